"""The README's tutorial, exactly as printed there, runs and plays over HTTP."""

import os
import re
import signal
import subprocess
import sys
import urllib.parse

from .support import ROOT, Client, continuation_id


def tutorial_code():
    """The README's first Python block that defines ``add_two_numbers``."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        blocks = re.findall(r"```python\n(.*?)```", readme.read(), re.S)
    code = next(block for block in blocks if "def add_two_numbers" in block)
    assert code.count("port=8080") == 1
    return code.replace("port=8080", "port=0")  # the one change: a free port


def test_the_readme_tutorial_prints_where_to_go_and_handles_bad_input():
    process = subprocess.Popen([sys.executable, "-c", tutorial_code()], cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=ROOT),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line)
        assert line.startswith("open ") and url, line + process.stderr.read()
        parts = urllib.parse.urlsplit(url.group(0))
        assert parts.path == "/add"  # the printed address is the page to open
        client = Client(parts.port)
        status, _, page = client.get("/add")
        assert status == 200 and "First number:" in page

        def answer(page, n):
            return client.request("/add", method="POST",
                                  body={"__wc": continuation_id(page), "n": n})
        status, _, page = answer(page, "twelve")
        assert status == 200  # asked again, not a 500
        assert "&#x27;twelve&#x27; is not a whole number" in page and "First number:" in page
        status, _, page = answer(page, "2")
        assert status == 200 and "Second number:" in page and "not a whole" not in page
        status, _, page = answer(page, "<b>40</b>")
        assert status == 200 and "&lt;b&gt;40&lt;/b&gt;" in page and "Second number:" in page
        status, _, page = answer(page, "40")
        assert status == 200 and "2 + 40 = 42" in page
        client.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, process.stderr.read()
