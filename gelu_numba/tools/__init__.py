"""Clients of the kernels: the command line and report (``cli``), timings
(``bench``, ``gpu_bench``), figures (``plots``), accuracy sweeps
(``accuracy``) against the mpmath reference (``reference``), and PTX
inspection (``ptx``).  Nothing in ``gelu_numba.core`` or the public modules
imports them.
"""
