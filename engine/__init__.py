"""The simulated machine of microkernel-lab.

Public names
------------
Machine, Measurement, RunResult, StepResult, Fault, PageFault, BusError   the facade (`machine`)
ops                                        builders of op batches for Machine.run
load_profile, profile_names, Profile       CPU profiles (`profile`)
Format, get_format, small_format, FORMATS  page-table formats (`pte`)
cycles                                     the cycle counter's categories
EngineError, ConfigError, ProfileError, MappingError, AddressError, OutOfFrames, TraceError
"""
from . import cycles, ops
from .errors import (EngineError, ConfigError, ProfileError, MappingError, AddressError,
                     OutOfFrames, TraceError)
from .machine import Machine, Measurement, RunResult, StepResult, Fault, PageFault, BusError
from .profile import load_profile, profile_names, Profile
from .pte import Format, get_format, small_format, FORMATS

__all__ = ["Machine", "Measurement", "RunResult", "StepResult", "Fault", "PageFault", "BusError",
           "ops", "cycles", "load_profile", "profile_names", "Profile", "Format", "get_format",
           "small_format", "FORMATS", "EngineError", "ConfigError", "ProfileError",
           "MappingError", "AddressError", "OutOfFrames", "TraceError"]
