"""The virus scanner hook: EVIDENCE_SCAN_COMMAND (e.g. `clamdscan --no-summary --stream -` or
`clamscan --no-summary -`) is run for each upload with the content on its standard input. Exit status 0
means clean, 1 means infected (ClamAV's convention), anything else — or no answer within
EVIDENCE_SCAN_TIMEOUT seconds — means the file could not be checked: it is refused too (fail closed).
Without a command nothing is scanned (say so in the deployment: README, "Evidence and notes")."""
import shlex
import subprocess

from ..errors import InvalidData

CLEAN, INFECTED = 0, 1


def check(command: str, content: bytes, timeout: float):
    """Nothing when `content` is clean or no scanner is configured; else InvalidData."""
    if not command:
        return
    try:
        done = subprocess.run(shlex.split(command), input=content, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InvalidData(f"the virus scanner could not check the file: {err}", code="evidence_scan_failed",
                          fields={"file": "could not be checked for viruses"})
    if done.returncode == INFECTED:
        raise InvalidData("the virus scanner found malware in the file", code="evidence_infected",
                          fields={"file": "malware found"})
    if done.returncode != CLEAN:
        raise InvalidData(f"the virus scanner could not check the file (exit {done.returncode})",
                          code="evidence_scan_failed",
                          fields={"file": "could not be checked for viruses"})
