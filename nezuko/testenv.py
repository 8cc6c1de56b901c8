"""pytest plugin loaded with `-p nezuko.testenv` before Django's settings.

Tests get development-style defaults and never read a developer's `.env`.
Variables already in the environment (CI's DATABASE_URL, REDIS_URL) win.
"""

import os

os.environ["NEZUKO_READ_DOTENV"] = "false"
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# Two keys: the first encrypts, both decrypt, so rotation paths are exercised.
os.environ.setdefault(
    "NEZUKO_ENCRYPTION_KEYS",
    "dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LTE=,dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LTI=",
)
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("TELEGRAM_API_URL", "http://127.0.0.1:9")
