# The image docker-compose.yml runs for web, worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home cims && mkdir -p /app/var /app/media /app/staticfiles /app/backups && chown -R cims /app/var /app/media /app/staticfiles /app/backups
USER cims
EXPOSE 8000
# Run without docker-compose: the web server with the same access log as there, the path only
# (%(U)s), never the query string (searches by phone or name go in ?q=) nor the Referer.
CMD ["gunicorn", "cims.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s %(H)s\" %(s)s %(b)s %(L)s \"%(a)s\""]
