"""LLM backends behind one interface (see ``pipeline.llm.base``)."""
