"""Experiments end to end, each one recipe file read top to bottom over the component library.

- `acc`: `auralign quickstart`, the ACC experiment on the offline mini corpus;
- `dali`: `auralign dali quickstart`, DALI on the offline audio-visual miniature;
- `mini_captioner`: trains the DALI miniature's stand-in image captioner (`models.dali.mini_llava`);
- `miniature`: what the two miniatures share (command line, config file with partial stage configs, phases,
  results.json).
"""
