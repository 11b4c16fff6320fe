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


def test_python_m_webcont_help_reads_without_braces_and_shows_its_defaults():
    result = subprocess.run([sys.executable, "-m", "webcont", "--help"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    assert "{" not in result.stdout
    assert "usage: python -m webcont nginx-config" in result.stdout
    assert "(default: 127.0.0.1:8080)" in result.stdout and "(default: 10)" in result.stdout


def test_user_docs_cite_nothing_outside_the_repository_and_no_lab_commits():
    paths = [os.path.join(ROOT, "README.md")]
    paths += [os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))]
    for package in ("webcont", "stackless_compat"):
        paths += [os.path.join(ROOT, package, name)
                  for name in os.listdir(os.path.join(ROOT, package)) if name.endswith(".py")]
    for path in paths:
        with open(path, encoding="utf-8") as text:
            content = text.read()
        assert "shared/" not in content and "stackless-docs" not in content, path
        if path.endswith(".md"):
            assert not re.search(r"\bcommit [0-9a-f]{7}", content), path
