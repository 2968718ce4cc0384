"""The Technic scan cluster services: one package per process, plus what they share."""
