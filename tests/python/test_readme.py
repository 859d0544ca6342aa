"""The README's "From Python" example runs verbatim (so it cannot rot)."""
import contextlib
import io
import re

from conftest import SOURCE


def python_blocks(section):
    text = (SOURCE / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_from_python_example_runs():
    blocks = python_blocks("From Python")
    assert blocks, "README.md has no python block under 'From Python'"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md (From Python)", "exec"), {"__name__": "__readme__"})
    lines = out.getvalue().splitlines()
    # A header and a row for each of the three methods, with the three columns.
    assert lines[0].split()[0] == "method" and "gt/f1-positive" in lines[0] and "insertion/auc" in lines[0]
    assert [l.split()[0] for l in lines[1:]] == ["gradient_x_input", "saliency", "guided-backprop"]
    for line in lines[1:]:
        assert all(0.0 <= float(v) <= 1.0 for v in line.split()[1:])
