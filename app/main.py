"""The review web app: `emotion app` runs this with Streamlit. Pages at fixed URL paths:
/predict (one file), /scores (scored folders), /models (held-out metrics of each model)."""

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).parent / "views"  # a folder named pages/ would switch on Streamlit's older multipage mode

st.set_page_config(page_title="Emotion pipeline", page_icon=":material/sentiment_satisfied:", layout="wide")
navigation = st.navigation([
    st.Page(VIEWS / "home.py", title="Start", icon=":material/home:", default=True),
    st.Page(VIEWS / "predict.py", title="Predict one file", icon=":material/upload_file:", url_path="predict"),
    st.Page(VIEWS / "scores.py", title="Scored folders", icon=":material/table_view:", url_path="scores"),
    st.Page(VIEWS / "models.py", title="Models", icon=":material/monitoring:", url_path="models"),
])
navigation.run()
