"""The parts of ``engine.redact``: which keys hold secrets (``keys``), values the application registers
(``registry``), secret shapes in free text (``detector`` from a maintained ruleset, ``shapes`` for the ones it
leaves out), the line-by-line redactor (``stream``), structured data and results (``structured``) and commands
that print bare secrets (``commands``). Import the public names from ``engine.redact``."""
