"""The steps of one EMV transaction, one function each over one `KernelContext` (Book 3 10).

`firmware.emv.kernel` runs them in order; its docstring lists which module
holds which step.
"""
