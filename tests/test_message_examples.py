"""docs/customer-messages.md shows what the customer receives: it must match the templates."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_messages_are_the_deployed_templates():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "message_examples.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
