"""Write docs/customer-messages.md: every customer message of processes/messages/ rendered with example
values, in Chinese and English, as the customer receives it (e-mail subject and body, SMS).

    .venv/bin/python scripts/message_examples.py          # rewrite the file
    .venv/bin/python scripts/message_examples.py --check  # exit 1 if the file is not current (the suite runs it)
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import messages  # noqa: E402

OUT = ROOT / "docs" / "customer-messages.md"
STANDARD = {"complaint_number": "TS-20261201-000123", "portal_url": "https://claims.example.com/my/" + "3f9a" * 12,
            "company": "示例保险公司", "hotline": "95500", "received_at": "2026-12-01T01:30:00+00:00"}
# What the diagrams pass (processes/*.bpmn, notify_customer('…', field=…)), with example values.
EXAMPLES = {
    "acknowledgement": {"review_due": "2026-12-02T01:30:00+00:00"},
    "not_accepted": {"reason": "该事项不属于保险合同约定的理赔范围，已另行告知您咨询渠道。",
                     "review_until": "2026-12-31T02:00:00+00:00"},
    "accepted": {"result_due": "2026-12-10T10:00:00+00:00"},
    "malicious_closed": {"reason": "同一事项已于2026年10月处理完毕，本次投诉未提出新的事实和理由。",
                         "review_until": "2026-12-31T02:00:00+00:00"},
    "result": {"solution": "经复核，您的车辆维修费用属于保险责任范围，我们将按定损金额补足赔款。",
               "compensation_amount": 12800, "next_steps": "赔款将在3个工作日内转入您的收款账户。",
               "review_until": "2026-12-31T02:00:00+00:00"},
    "reopened": {"result_due": "2026-12-21T10:00:00+00:00",
                 "reason": "赔付金额未包含拖车费用，希望重新核定。"},
    "satisfaction_survey": {"survey": "satisfaction_survey"},
    "withdrawn": {"reason": "问题已与理赔人员协商解决。"},
    "review_received": {"review_due": "2027-01-08T02:00:00+00:00"},
    "review_result": {"result": "经上级机构核查，原处理结论符合合同约定与公司规定，予以维持。", "changed": False},
    "decision_extended": {"reason": "需向医院调取病历并核实伤情，无法在15日内作出决定。", "decision_days": 30,
                          "decision_due": "2026-12-31T15:59:59+00:00"},
    "appraisal_started": {"kind": "伤残等级鉴定", "started_on": "2026-12-05", "expected_end_on": "2026-12-12",
                          "decision_due": "2026-12-24T15:59:59+00:00"},
    "appraisal_ended": {"kind": "伤残等级鉴定", "ended_on": "2026-12-10", "decision_due": "2026-12-22T15:59:59+00:00"},
    "progress": {"step": "investigation", "expected_due": "2026-12-08T15:59:59+00:00"},
    "confirmation_deemed": {"result_sent_at": "2026-12-09T06:00:00+00:00",
                            "review_until": "2027-01-08T15:59:59+00:00"},
}
LANGUAGES = (("zh", "中文"), ("en", "English"))


def render_all() -> str:
    templates, problems = messages.load(ROOT / "processes")
    if problems:
        raise SystemExit("\n".join(map(str, problems)))
    parts = ["# What the customer receives\n",
             "Every message of `processes/messages/`, rendered with example values by "
             "`scripts/message_examples.py` (the suite checks that this file is current). The link is the "
             "customer's own page; each message carries its own.\n"]
    for name, fields in EXAMPLES.items():
        parts.append(f"\n## `{name}`\n")
        for language, title in LANGUAGES:
            out = messages.render(templates, name, language, {**STANDARD, **fields})
            parts.append(f"\n### {title}\n\n**{out.subject}**\n\n```text\n{out.body}\n```\n\n"
                         f"SMS ({len(out.sms)}):\n\n```text\n{out.sms}\n```\n")
    return "".join(parts)


def main(argv) -> int:
    text = render_all()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/message_examples.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
