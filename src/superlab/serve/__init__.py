"""Turning a trained model into answers: sampling and (later) an HTTP server.

``Generator(model, tokenizer).generate(prompt, **settings)`` is the unit; the
``serve`` stage of a run answers the recipe's sample prompts with it.
"""
