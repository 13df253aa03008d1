"""lm-eval's hooks for archnb's StreetMath tasks, all archnb.lmeval's (whose task_files writes here)."""

from archnb.lmeval import doc_to_text, doc_to_text_hint, doc_to_text_no_tools, load_docs, process_results  # noqa: F401
