-- wrk script: play guess-the-number games, one step per request.
--
-- Continuation ids are single use, so each wrk thread keeps a pool of the ids
-- found in its responses (name="__wc" value="..."): a request takes one id
-- from the pool and resumes that game with a random guess; when the pool is
-- empty (at start, or after a game was won) it starts a new game with GET /.
-- wrk asks for a connection's next request only once its previous response
-- went through response(), so with one request in flight per connection the
-- pool never runs dry in steady state.  Against an app without forms (hello
-- world) every request is a plain GET /.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  started = 0
  resumed = 0
  math.randomseed(os.time() + #threads * 7919)
end

function request()
  local id = table.remove(ids)
  if id == nil then
    started = started + 1
    return wrk.format("GET", "/")
  end
  resumed = resumed + 1
  return wrk.format("GET", "/?__wc=" .. id .. "&guess=" .. math.random(1, 100))
end

function response(status, headers, body)
  local id = string.match(body, 'name="__wc" value="([^"]+)"')
  if id then
    table.insert(ids, id)
  end
end

function done(summary, latency, requests)
  local s, r = 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("started")
    r = r + thread:get("resumed")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d"
    .. " started=%d resumed=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, s, r))
end
