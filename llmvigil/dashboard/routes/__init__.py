"""One file per dashboard page, as Streamlit runs them (its tests switch pages by file)."""

#: (route file beside the entry script, title, URL path). No icons: Streamlit fetches a
#: page's Material icon from fonts.gstatic.com for the favicon.
PAGES = (
    ("routes/overview.py", "Overview", "overview"),
    ("routes/metrics.py", "Metrics", "metrics"),
    ("routes/quality.py", "Quality", "quality"),
    ("routes/drift.py", "Drift", "drift"),
    ("routes/traces.py", "Traces", "traces"),
    ("routes/alerts.py", "Alerts", "alerts"),
    ("routes/sessions.py", "Sessions", "sessions"),
)
