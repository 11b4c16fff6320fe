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
--
-- For bench/cluster.py: behind nginx a durable id starts with its home
-- node's name (n0-...), so nginx sends the step to that node.  Each
-- response's X-Webcont-Node header is counted per node ("-" without one), to
-- show that new games spread over the nodes and that steps stay home.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  started = 0
  resumed = 0
  served = {}
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
  local node = headers["X-Webcont-Node"] or headers["x-webcont-node"] or "-"
  served[node] = (served[node] or 0) + 1
end

function done(summary, latency, requests)
  local s, r, by = 0, 0, {}
  for _, thread in ipairs(threads) do
    s = s + thread:get("started")
    r = r + thread:get("resumed")
    for node, count in pairs(thread:get("served")) do
      by[node] = (by[node] or 0) + count
    end
  end
  local parts = {}
  for node, count in pairs(by) do
    table.insert(parts, node .. ":" .. count)
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d"
    .. " started=%d resumed=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status, s, r))
  io.write("SERVED " .. table.concat(parts, ",") .. "\n")
end
