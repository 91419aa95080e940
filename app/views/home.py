"""The start page: what each page is for, and which project the app reads."""

import streamlit as st

from app.common import app_config

config = app_config()
st.title("Emotion pipeline")
st.write("Emotions (Sad/Fear, Neutral, Happy, Angry, Surprise/Disgust) recognised from faces, voices and "
         "videos by the models trained in this project.")
st.page_link("views/predict.py", label="**Predict one file**: upload an image, a recording or a video and see "
             "the emotion, where the face model looked, and a video's timeline window by window",
             icon=":material/upload_file:")
st.page_link("views/scores.py", label="**Scored folders**: browse the videos `emotion score` has scored, "
             "filter them, open one video's timeline and transcript, see the rejected files",
             icon=":material/table_view:")
st.page_link("views/models.py", label="**Models**: each model's accuracy on people it never saw, "
             "confusions, training curves, ablations and tuning trials", icon=":material/monitoring:")
st.caption(f"Project: `{config.root}` · models: `{config.model_dir}` · scored folders: "
           + ", ".join(f"`{folder}`" for folder in config.scores))
