# reporter as a container: `reporter scheduler` by default; `worker` for a Celery worker.
# The jobs file is mounted at /etc/reporter/jobs.yaml; secrets come from the environment
# (docs/DEPLOY.md lists them). Stored reports and the outbox go to /var/lib/reporter.
FROM python:3.11-slim-bookworm

# the libraries WeasyPrint draws PDFs with, and fonts (the same list as scripts/setup.sh)
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
       fonts-noto-color-emoji \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system reporter \
    && useradd --system --gid reporter --home-dir /var/lib/reporter --shell /usr/sbin/nologin reporter \
    && mkdir -p /var/lib/reporter /etc/reporter \
    && chown reporter:reporter /var/lib/reporter

WORKDIR /src
COPY pyproject.toml README.md ./
COPY reporter ./reporter
RUN pip install --no-cache-dir . && rm -rf /src

ENV REPORTER_CONFIG=/etc/reporter/jobs.yaml \
    PYTHONUNBUFFERED=1
COPY deploy/jobs.yaml /etc/reporter/jobs.yaml
USER reporter
WORKDIR /var/lib/reporter
VOLUME ["/var/lib/reporter"]
# exec form: reporter is PID 1's child-free process and gets SIGTERM (finish, then exit)
# and SIGHUP (re-read the jobs file) itself
STOPSIGNAL SIGTERM
ENTRYPOINT ["reporter"]
CMD ["scheduler"]
