"""MkDocs hook: renders a Jupyter notebook into a page.

A page holding the line `<!-- notebook: PATH -->` (PATH relative to the
repository root) shows the notebook's cells there: markdown cells as they
are, code cells as Python blocks. The notebook is stored without outputs
(the tests execute it), so none are shown.
"""

import json
import os
import re

_MARKER = re.compile(r"^<!-- notebook: (\S+) -->$", re.M)


def _render(path):
    with open(path, encoding="utf-8") as file:
        notebook = json.load(file)
    parts = []
    for cell in notebook["cells"]:
        source = "".join(cell["source"]).strip()
        if not source:
            continue
        if cell["cell_type"] == "code":
            parts.append(f"```python\n{source}\n```")
        elif cell["cell_type"] == "markdown":
            parts.append(source)
    return "\n\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    root = os.path.dirname(os.path.abspath(config["config_file_path"]))
    return _MARKER.sub(
        lambda match: _render(os.path.join(root, match.group(1))), markdown
    )
