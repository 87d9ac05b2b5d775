"""Hostile values in what a run reports (host and task names, messages, the user, paths): report.md must stay one
document of ours, with its tables whole and nothing a Markdown viewer would run or link."""

from __future__ import annotations

from markdown_it import MarkdownIt

from shipshape.report import HostSummary, RunReport, to_markdown

HOSTILE = "a|b `code` <img src=x onerror=alert(1)> [link](http://evil) *bold*\n# Injected\n| x | y |\r\n<script>"


def hostile_report() -> RunReport:
    task = {"host": "evil|host<b>", "play": "p", "task": f"task {HOSTILE}", "action": "command", "task_path": "",
            "status": "failed", "changed": False, "started": "", "ended": "", "duration_s": 0.0,
            "message": f"msg {HOSTILE}"}
    return RunReport(
        run_id="r1", command="deploy", playbook="/pb/`deploy`.yml", inventory="/inv/``x`` <i>.yml", limit="a`b",
        argv=[], user=f"<script>alert(1)</script>\n# root", check=False, diff=False, started="s", ended="e",
        duration_s=1.0, result="failed", exit_code=1, message=f"evil|host: {HOSTILE}", runner_status="failed",
        runner_rc=2, hosts=[HostSummary(name="evil|host<b>\n# x", failed=1)], tasks=[task],
        results={"evil|host<b>": {"deploy_result": {"result": "failed", "message": HOSTILE}}},
        changes=[f"change {HOSTILE}"], failures=[f"evil|host: {HOSTILE}"], warnings=[f"- {HOSTILE}", "# heading", "1. ordered", "> quoted"],
        artifacts={"run_dir": "/state/`runs`/r1"})


def test_report_md_escapes_markdown_and_html_in_values():
    text = to_markdown(hostile_report())
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
    # No raw HTML, no link, no emphasis taken from a value.
    assert not kinds & {"html_block", "html_inline", "link_open", "em_open", "ordered_list_open", "blockquote_open"}, kinds
    # The headings are ours only.
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["shipshape deploy: failed", "What will change", "Hosts", "Results", "Failures", "Warnings",
                        "Failed tasks", "Artifacts"], headings
    # Each table keeps its rows and columns: the hosts table one row of 7 cells, the failed tasks one of 4.
    rows, row = [], None
    for t in tokens:
        if t.type == "tr_open":
            row = 0
        elif t.type in ("td_open", "th_open"):
            row += 1
        elif t.type == "tr_close":
            rows.append(row)
    assert rows == [7, 7, 4, 4], rows
    # The bold host in the results is the one bold run of the line, and the values are still there to read.
    strong = [c for t in tokens for c in (t.children or []) if c.type == "strong_open"]
    assert len(strong) == 1
    assert "onerror=alert(1)" in text and "evil" in text
    # Inline code keeps the backticks of a path as text.
    codes = [c.content for t in tokens for c in (t.children or []) if c.type == "code_inline"]
    assert "/pb/`deploy`.yml" in codes and "/inv/``x`` <i>.yml" in codes and "/state/`runs`/r1" in codes, codes
