"""The satisfaction survey on the customer's page (/my/survey) speaks the page's language in its answers
too: in English each score reads "1 · Very dissatisfied" with no Chinese in it, in Chinese "非常不满意"."""
import re

import pytest

from tests.flow import Desk
from tests.test_portal import Phone, confirmed_satisfied

CJK = re.compile(r"[\u3400-\u9fff]")
CHOICE = re.compile(r'<input type="radio" name="(\w+)" value="(\d+)"[^>]*>\s*<span>([^<]*)</span>')
RATED = ["overall", "speed", "communication", "fairness", "recommend"]


@pytest.fixture
def desk(app, people):
    return Desk(Phone(app, "10.9.9.9"), people)


def choices(phone, language) -> dict:
    """{question: [label of score 1, ..., label of score 5]} of the survey page in `language`."""
    assert phone.get(f"/my/language/{language}").status_code == 302
    page = phone.get("/my/survey")
    assert page.status_code == 200
    found = {}
    for name, value, label in CHOICE.findall(page.text):
        found.setdefault(name, []).append((int(value), label.strip()))
    return {name: [label for _, label in sorted(pairs)] for name, pairs in found.items()}


def test_the_survey_answers_are_in_english_on_the_english_page_and_in_chinese_on_the_chinese(app, desk):
    phone, _number = confirmed_satisfied(app, desk)

    english = choices(phone, "en")
    assert list(english) == RATED and all(len(labels) == 5 for labels in english.values())
    assert [label for labels in english.values() for label in labels if CJK.search(label)] == []
    assert english["overall"][0] == "1 · Very dissatisfied" and english["overall"][4] == "5 · Very satisfied"
    assert english["recommend"][0] == "1 · Definitely not" and english["recommend"][4] == "5 · Definitely"

    chinese = choices(phone, "zh")
    assert chinese["overall"] == ["非常不满意", "不满意", "一般", "满意", "非常满意"]
    assert chinese["recommend"] == ["肯定不会", "可能不会", "不确定", "可能会", "肯定会"]
