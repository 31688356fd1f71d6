"""Exporters: a Trace in, a program that redoes the run out (:mod:`.torch_script`, PyTorch).

An exporter reads only the Trace: its ``run`` (the resolved facts), its ``inputs`` (the
problem's arrays as given) and its ``mask`` (the run's one mask). The equivalent attncli
command, which depends on how the run was asked for, comes from :mod:`.command`.
"""
