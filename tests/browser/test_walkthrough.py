"""One complaint carried through the whole procedure in a real browser by three people, each in a
browser context of their own (own cookies): customer service registers and reviews it, a claims
specialist investigates and plans a compensation large enough to need management, a manager (who
works in English) approves, the customer is dissatisfied, the specialist re-evaluates without a new
investigation and plans again, the customer is satisfied and customer service archives. Screenshots
of the key pages go to test-artifacts/screenshots/sqlite/.

On SQLite only, as the other browser tests: the browser adds nothing that depends on the database, and the
pages' database paths run on PostgreSQL too in test_web_backends.py (the same routes, through Flask's test
client) and the API's in test_paths.py. The PostgreSQL walkthrough cost CI 45 s of its 15 minutes."""
import re

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.flow import Desk

NUMBER = re.compile(r"^TS-\d{8}-\d{6}$")
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
STEPS_ZH = ("初步审核", "调查取证", "分析原因并制定方案", "管理层决策", "反馈处理结果", "客户确认", "重新评估", "案例归档")


class Person:
    """One user's browser tab."""

    def __init__(self, page: Page, username):
        self.page, self.username = page, username

    def login(self, shot=None):
        page = self.page
        page.goto("/login")
        expect(page.get_by_test_id("login-form")).to_be_visible()
        if shot:
            shot(page, "01-login")
        page.get_by_test_id("input-username").fill(self.username)
        page.get_by_test_id("input-password").fill(f"pw-{self.username}")
        page.get_by_test_id("submit-login").click()
        expect(page.get_by_test_id("current-user")).to_contain_text(self.username)
        return self

    def home(self):
        self.page.goto("/")
        expect(self.page.get_by_test_id("filters")).to_be_visible()
        return self.page

    def row(self, queue, number, step):
        return self.page.locator(f'[data-testid="queue-{queue}"] tr[data-complaint="{number}"][data-step="{step}"]')

    def sees(self, number, step, queue="available"):
        """The step of the complaint is in this person's queue (the home page is reloaded)."""
        self.home()
        expect(self.row(queue, number, step)).to_have_count(1)

    def does_not_see(self, number, step):
        page = self.home()
        expect(page.locator(f'tr[data-testid="queue-row"][data-complaint="{number}"][data-step="{step}"]')) \
            .to_have_count(0)

    def claim(self, number, step):
        """Claim from the queue (one click) and land on the task page with its form."""
        self.sees(number, step)
        self.row("available", number, step).get_by_test_id("claim-button").click()
        page = self.page
        expect(page).to_have_url(re.compile(r"/tasks/[0-9a-f-]+$"))
        expect(page.get_by_test_id("task-form")).to_be_visible()
        expect(page.get_by_test_id("task-assignee")).to_have_text(self.username)
        return page

    def submit(self):
        """Submit the task form; back on the home page, return the confirmation message."""
        page = self.page
        page.get_by_test_id("submit-task").click()
        expect(page).to_have_url(re.compile(r"/$"))
        flash = page.get_by_test_id("flash").first
        expect(flash).to_be_visible()
        return flash.inner_text()

    def work(self, number, step, values):
        """Claim the step, fill its form (name -> text, or a (kind, value) pair), submit."""
        fill(self.claim(number, step), values)
        return self.submit()


def fill(page: Page, values: dict):
    for name, value in values.items():
        if isinstance(value, tuple):
            kind, value = value
            if kind == "choose":                     # radio buttons and yes/no
                page.get_by_test_id(f"input-{name}-{value}").check()
            elif kind == "select":
                page.get_by_test_id(f"input-{name}").select_option(value)
            elif kind == "check":                    # a single confirmation checkbox
                page.get_by_test_id(f"input-{name}").check()
            else:
                raise ValueError(kind)
        else:
            page.get_by_test_id(f"input-{name}").fill(str(value))


def background_complaints(app, people):
    """Two more complaints in customer service's queue (registered through the JSON API), so the
    queue looks like a working day's."""
    desk = Desk(app.test_client(), people)
    desk.register(channel="website", category="claim_amount", customer_name="李四", phone="13900001111")
    desk.register(channel="email", category="service_attitude", customer_name="赵六", phone="13700002222")
    db.session.remove()


def test_three_people_take_one_complaint_through_the_whole_procedure(app, people, new_context, screenshots):
    shot = screenshots
    background_complaints(app, people)
    cs, specialist, manager = (Person(new_context().new_page(), username)
                               for username in ("customer_service", "claims_specialist", "management"))
    cs.login(shot)
    specialist.login()
    manager.login()

    # ---- customer service registers the complaint; the number is shown prominently.
    page = cs.page
    page.get_by_test_id("nav-register").click()
    expect(page.get_by_test_id("register-form")).to_be_visible()
    expect(page.get_by_test_id("input-received_at")).not_to_have_value("")     # now, by default
    fill(page, {"channel": ("select", "mobile_app"), "category": ("select", "claim_delay"),
                "product_line": ("select", "motor"),
                "description": "车险理赔申请提交已一个月，仍未收到赔款，多次致电无人答复。",
                "customer_name": "张三", "phone": "13812345678", "email": "zhangsan@example.com",
                "id_number": "110101199001061234", "policy_number": "PA-2026-0001",
                "claim_number": "CL-2026-0001", "claim_handler": ("select", "claims_specialist_2")})
    shot(page, "02-register-form")
    page.get_by_test_id("submit-register").click()
    banner = page.get_by_test_id("complaint-banner")
    expect(banner).to_have_class(re.compile(r"banner-new"))
    expect(banner).to_contain_text("登记成功")
    number = page.get_by_test_id("complaint-number").inner_text().strip()
    assert NUMBER.match(number), number
    expect(page.get_by_test_id("complaint-status")).to_have_text("处理中")
    expect(page.get_by_test_id("current-step")).to_contain_text("初步审核")
    shot(page, "03-complaint-registered", height=800)

    # ---- the initial review waits for customer service only.
    cs.sees(number, "initial_review")
    expect(page.get_by_test_id("queue-available").get_by_test_id("queue-row")).to_have_count(3)
    expect(page.get_by_test_id("count-available")).to_have_text("3")
    shot(page, "04-home-queues")
    specialist.does_not_see(number, "initial_review")
    manager.does_not_see(number, "initial_review")

    # ---- an invalid submission first: a message next to the field, the input kept, nothing saved.
    page = cs.claim(number, "initial_review")
    expect(page.get_by_test_id("task-title")).to_contain_text("初步审核")
    fill(page, {"decision": ("choose", "reject"), "risk_level": ("choose", "medium"),
                "review_notes": "客户称理赔超期，需核实"})
    page.get_by_test_id("task-form").evaluate("form => form.noValidate = true")   # the server's check, not forms.js'
    page.get_by_test_id("submit-task").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("有 1 项需要修改")
    expect(page.get_by_test_id("error-rejection_reason")).to_have_text("此项为必填项。")
    expect(page.get_by_test_id("input-rejection_reason")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("input-review_notes")).to_have_value("客户称理赔超期，需核实")
    expect(page.get_by_test_id("input-decision-reject")).to_be_checked()
    expect(page.get_by_test_id("input-risk_level-medium")).to_be_checked()
    shot(page, "05-form-with-error")
    fill(page, {"decision": ("choose", "accept"), "review_notes": "材料齐全，符合受理条件"})
    assert "下一步：调查取证" in cs.submit()
    cs.does_not_see(number, "initial_review")

    # ---- the claims specialist investigates and plans a compensation above 50,000.
    specialist.sees(number, "investigate")
    cs.does_not_see(number, "investigate")
    message = specialist.work(number, "investigate", {
        "findings": "理赔材料于上月提交，审核岗积压未处理", "evidence": "理赔系统操作日志",
        "customer_contacted": ("choose", "true")})
    assert "下一步：分析原因并制定方案" in message
    page = specialist.claim(number, "analyse_and_plan")
    expect(page.get_by_test_id("decision")).to_have_count(2)          # the review and the investigation
    expect(page.get_by_test_id("customer")).to_have_attribute("data-personal", "full")   # the holder sees it
    fill(page, {"cause_code": ("select", "process_backlog"), "cause": "审核岗人手不足导致积压",
                "responsible_party": ("select", "company"),
                "policy_basis": "保险条款第5条：30日内赔付", "solution": "立即赔付并按约定支付迟延利息",
                "compensation_amount": "80000"})
    shot(page, "06-task-page")
    # After a full-page screenshot chromium spends the first click on leaving the focused number field.
    page.evaluate("() => document.activeElement.blur()")
    assert "下一步：管理层决策" in specialist.submit()

    # ---- the manager works in English and approves.
    page = manager.home()
    page.get_by_test_id("lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("nav-mine")).to_contain_text("My tasks")
    expect(page.get_by_test_id("nav-available")).to_contain_text("To claim")
    expect(page.locator("#available h2")).to_contain_text("Waiting to be claimed")
    manager.sees(number, "management_decision")
    expect(manager.row("available", number, "management_decision")).to_contain_text("Management decision")
    specialist.does_not_see(number, "management_decision")
    cs.does_not_see(number, "management_decision")
    page = manager.claim(number, "management_decision")
    expect(page.get_by_test_id("task-title")).to_contain_text("Management decision")
    expect(page.get_by_test_id("decision").filter(has_text="80,000")).to_have_count(1)   # the plan, grouped
    fill(page, {"approved": ("choose", "true"), "decision_comments": "Approved: pay with late interest."})
    shot(page, "07-management-decision")
    message = manager.submit()
    assert "is done. Next: Tell the customer the result" in message, message

    # ---- feedback, and the customer is dissatisfied.
    specialist.sees(number, "feedback_to_customer")
    message = specialist.work(number, "feedback_to_customer", {
        "feedback_channel": ("select", "phone"), "feedback_summary": "已电话告知客户赔付方案及金额"})
    assert "下一步：客户确认" in message
    cs.sees(number, "customer_confirmation")
    specialist.does_not_see(number, "customer_confirmation")
    message = cs.work(number, "customer_confirmation", {
        "satisfied": ("choose", "false"), "dissatisfaction_reasons": "迟延利息计算有误，要求重新核算",
        "customer_feedback": "客户不接受当前方案"})
    assert "下一步：重新评估" in message

    # ---- re-evaluation without a new investigation, a smaller plan that needs no management.
    page = specialist.claim(number, "re_evaluation")
    expect(page.get_by_test_id("highlight-dissatisfaction_reasons")).to_contain_text("迟延利息计算有误")
    fill(page, {"evaluation": "利息计算口径有误，需补发差额", "needs_investigation": ("choose", "false")})
    shot(page, "08-re-evaluation")
    shot(page, "08-re-evaluation-top", height=900)
    message = specialist.submit()
    assert "下一步：分析原因并制定方案" in message and "调查取证" not in message
    message = specialist.work(number, "analyse_and_plan", {
        "cause_code": ("select", "staff_error"), "cause": "迟延利息按错误利率计算",
        "responsible_party": ("select", "company"),
        "policy_basis": "保险条款第5条", "solution": "补发利息差额并致歉", "compensation_amount": "1200"})
    assert "下一步：反馈处理结果" in message and "管理层决策" not in message
    manager.does_not_see(number, "management_decision")
    message = specialist.work(number, "feedback_to_customer", {
        "feedback_channel": ("select", "sms"), "feedback_summary": "已短信告知补发差额"})
    assert "下一步：客户确认" in message

    # ---- satisfied this time; customer service archives and the complaint closes.
    assert "下一步：案例归档" in cs.work(number, "customer_confirmation", {
        "satisfied": ("choose", "true"), "customer_feedback": "客户确认满意"})
    message = cs.work(number, "archive", {"archive_summary": "两轮处理后客户满意，材料完整",
                                          "records_complete": ("check", "true")})
    assert "投诉已结案" in message
    for person in (cs, specialist, manager):
        person.home()
        expect(person.page.locator(f'tr[data-complaint="{number}"]')).to_have_count(0)

    # ---- the complaint page: closed, resolved, with the whole timeline.
    page = cs.page
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill(number)
    page.get_by_test_id("search-button").click()
    expect(page).to_have_url(re.compile(rf"/complaints/{number}$"))
    expect(page.get_by_test_id("complaint-status")).to_have_text("已结案")
    expect(page.get_by_test_id("complaint-banner")).to_contain_text("已解决")
    expect(page.get_by_test_id("current-tasks")).to_have_count(0)
    completed = page.locator('[data-testid="timeline-row"][data-action="task_completed"]')
    expect(completed).to_have_count(11)
    for step in STEPS_ZH:
        expect(completed.filter(has_text=step).first).to_be_visible()
    expect(page.locator('[data-testid="deadline-row"][data-state="open"]')).to_have_count(0)
    messages = page.locator('[data-testid="timeline-row"][data-action="customer_message_queued"]')
    expect(messages.filter(has_text="处理结果通知")).to_have_count(2)         # one per round
    expect(messages.filter(has_text="满意度回访")).to_have_count(1)
    shot(page, "09-complaint-closed")
    shot(page, "09-complaint-closed-top", height=1250)

    # ---- the complaint list: filtered by status, the filter saved under a name.
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("filter-status").select_option("closed")
    page.get_by_test_id("filter-apply").click()
    expect(page.locator(f'tr[data-complaint="{number}"]')).to_be_visible()
    expect(page.get_by_test_id("list-count")).to_have_text("找到 1 件投诉")
    page.get_by_test_id("save-filter-name").fill("已结案")
    page.get_by_test_id("save-filter").click()
    expect(page.get_by_test_id("saved-filter")).to_have_text("已结案")
    shot(page, "14-complaint-list", height=640)

    # The manager, still in English, reads the same page in English.
    manager.page.goto(f"/complaints/{number}")
    expect(manager.page.get_by_test_id("complaint-status")).to_have_text("Closed")
    expect(manager.page.get_by_test_id("timeline")).to_contain_text("Task completed")
    expect(manager.page.get_by_test_id("timeline")).to_contain_text("Result of the handling")


def test_pages_load_nothing_from_outside(app, people, page: Page, base_url):
    """Login, home, register and search pages: every request goes to the live server, none fails."""
    requested, failed = [], []
    page.on("request", lambda r: requested.append(r.url))
    # A request the next navigation cut short (e.g. the icon of a page left at once) did not fail.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and failed.append(r.url))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    Person(page, "customer_service").login()
    for url in ("/", "/complaints/new", "/complaints", "/?lang=en"):
        page.goto(url)                                # waits for the load event: CSS, images, scripts
    assert requested and any(u.endswith(".css") for u in requested)
    outside = [u for u in requested if not u.startswith(base_url + "/")]
    assert outside == []
    assert failed == []
