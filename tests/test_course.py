"""hashlib_edu.course: headless runs store no progress bars, and keep every other output."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from hashlib_edu.course import strip_progress_bars


def test_strip_progress_bars_keeps_messages_and_results():
    bar = "cifar10-1k-dpah-48-seed0-abc:  40%|####      | 4/10 [00:08<00:12,  2.0s/it]"
    widget = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": "reproduce:   0%|          | 0/4 [00:00<?, ?it/s]"})
    warning = new_output("stream", name="stderr", text="No trained models found: training.\n")
    result = new_output("stream", name="stdout", text="mAP 0.6804 after 13.5 min\n")
    table = new_output("execute_result", data={"text/plain": "  10%|  a table?"},
                       execution_count=1)
    nb = new_notebook(cells=[new_code_cell("train()", outputs=[
        new_output("stream", name="stderr", text=bar + "\r" + bar.replace("40%", "100%") + "\n"),
        widget, warning, result, table])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    assert strip_progress_bars(nb) == 2
    kept = nb.cells[0].outputs
    assert [o.get("text", o.get("data", {}).get("text/plain")) for o in kept] == [
        warning.text, result.text, table.data["text/plain"]]
    assert "widgets" not in nb.metadata
    nbformat.validate(nb)
    assert strip_progress_bars(nb) == 0  # nothing left to strip
