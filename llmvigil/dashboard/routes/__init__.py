"""One file per dashboard page, as Streamlit runs them (its tests switch pages by file)."""
