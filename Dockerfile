# FCN-8 road segmentation on a CUDA GPU. Build:  docker build -t fcn8 .
# Run:  docker run --gpus all -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" fcn8
# The base image is the CUDA build of the pinned TensorFlow (requirements.txt: tensorflow==2.21.0).
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY requirements.txt .
# TensorFlow comes from the base image (its CUDA build); install the rest at the pinned versions.
RUN grep -v '^tensorflow==' requirements.txt > /tmp/req.txt \
    && pip install --no-cache-dir -r /tmp/req.txt \
    && rm /tmp/req.txt

COPY fcn/ fcn/
COPY main.py helper.py project_tests.py conftest.py pyproject.toml ./
COPY tests/ tests/

RUN useradd --create-home --uid 1000 fcn \
    && mkdir -p /app/data /app/runs \
    && chown -R fcn:fcn /app
USER fcn

VOLUME ["/app/data", "/app/runs"]
# `python main.py` trains; on a GPU --precision auto means float16 mixed precision with dynamic
# loss scaling, and --xla compiles the graph with XLA.
ENTRYPOINT ["python", "main.py"]
CMD ["train", "--xla"]
