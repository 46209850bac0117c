"""The batch file adapter: read and write fixed-width and delimited files described by a layout.

Legacy cores exchange money in fixed-width files (NACHA ACH, end-of-day authorisation logs,
balance files). This package is the one port for them: ``load_layout`` reads a layout spec,
``FileReader`` streams a file into typed Arrow batches per record type with bad lines
quarantined and control totals checked, and ``write_file``/``FileWriter`` write records back
byte for byte.

Raises: LayoutError (invalid spec), InputError (missing file), ControlTotalMismatch (from
``raise_for_controls``), BadRecord (a value that does not fit when writing).
"""

from cutover.adapters.files.controls import ControlCheck
from cutover.adapters.files.layout import Layout, builtin_layouts, load_layout
from cutover.adapters.files.reader import FileReader, ReadReport
from cutover.adapters.files.writer import FileWriter, write_file

__all__ = ["ControlCheck", "FileReader", "FileWriter", "Layout", "ReadReport",
           "builtin_layouts", "load_layout", "write_file"]
