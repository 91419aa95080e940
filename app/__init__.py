"""The review web app (Streamlit): `emotion app` serves main.py; one script per page in views/.

`emotion app` hands the project's settings to the pages in these environment variables."""

ENV_SCORES = "EMOTION_APP_SCORES"  # scored OUT folders, os.pathsep-separated
ENV_PARAMS = "EMOTION_APP_PARAMS"  # params.yaml
ENV_MODELS = "EMOTION_APP_MODELS"  # the trained models folder (checkpoints and scoring/ ONNX graphs)
