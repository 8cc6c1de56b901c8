"""Prints a development `.env` with fresh secrets: `python -m nezuko.dotenv > .env`."""

import secrets

from cryptography.fernet import Fernet

TEMPLATE = """\
# Written by `make run` on first start. See .env.example for every variable.
DEBUG=true
SECRET_KEY={secret_key}
NEZUKO_ENCRYPTION_KEYS={encryption_key}
"""

if __name__ == "__main__":
    print(
        TEMPLATE.format(
            secret_key=secrets.token_urlsafe(50),
            encryption_key=Fernet.generate_key().decode(),
        ),
        end="",
    )
