# The image docker-compose.yml runs for web, worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home cims && mkdir -p /app/var /app/media /app/staticfiles && chown -R cims /app/var /app/media /app/staticfiles
USER cims
EXPOSE 8000
