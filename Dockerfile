# syntax=docker/dockerfile:1

# --- build: install the pinned dependencies into a virtual environment ---------
FROM python:3.11-slim AS build
RUN python -m venv /venv
COPY requirements/base.lock /tmp/base.lock
RUN /venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/base.lock

# --- catalogs: compile the translations (locale/*/LC_MESSAGES/django.po) -----------
# msgfmt comes from gettext, needed at build time only.
FROM python:3.11-slim AS catalogs
RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
COPY locale /locale
RUN find /locale -name '*.po' -exec sh -c 'msgfmt --check-format -o "${1%.po}.mo" "$1"' _ {} \;

# --- runtime: the venv and the code, run as an unprivileged user ------------------
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=nezuko.settings \
    LOG_FORMAT=json
RUN useradd --system --uid 10001 --create-home --home-dir /home/nezuko nezuko
WORKDIR /app
COPY --from=build /venv /venv
COPY . .
COPY --from=catalogs /locale /app/locale
# Static files are collected at build time; DEBUG only lets settings load without secrets.
RUN DEBUG=true NEZUKO_READ_DOTENV=false python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R nezuko:nezuko /app/var
USER nezuko
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
# One process: every active bot plus the web app (admin, dashboard, API, websockets);
# the command is nezuko/management/commands/runbot.py, composed by nezuko/runtime.py.
CMD ["python", "manage.py", "runbot", "--host", "0.0.0.0", "--port", "8000"]
