"""Go ``flag``/urfave-cli argument conventions, which every runc client uses.

Accepted forms (reference/oci-runtime-cli.md §5): ``--opt value``,
``--opt=value``, ``-opt value``, ``-opt=value``; booleans as ``--flag``,
``--flag=true`` or ``--flag=false``; one-letter aliases.  ``--`` ends flags.
Parsing stops at the ``stop_at``-th positional (exec's command and ps's
arguments pass through untouched); otherwise flags may follow positionals.
"""
from ocirt.errors import UsageError

_TRUE = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


class Flag:
    __slots__ = ("name", "kind", "alias", "default")

    def __init__(self, name, kind, alias=None, default=None):
        self.name, self.kind, self.alias = name, kind, alias
        self.default = [] if kind is list else (False if kind is bool and default is None else default)


def parse_flags(flags, argv, stop_at=None):
    by_name = {}
    for f in flags:
        by_name[f.name] = f
        if f.alias:
            by_name[f.alias] = f
    opts = {f.name: (list(f.default) if f.kind is list else f.default) for f in flags}
    positionals = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if stop_at and len(positionals) >= stop_at:
            positionals.extend(argv[i:])
            break
        if arg == "--":
            positionals.extend(argv[i + 1:])
            break
        if len(arg) < 2 or arg[0] != "-":
            if stop_at == 0:
                positionals.extend(argv[i:])
                break
            positionals.append(arg)
            i += 1
            continue
        name = arg.lstrip("-")
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        flag = by_name.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind is bool:
            if value is None:
                opts[flag.name] = True
            elif value.lower() in _TRUE:
                opts[flag.name] = _TRUE[value.lower()]
            else:
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
        else:
            if value is None:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            if flag.kind is int:
                try:
                    value = int(value, 0)
                except ValueError:
                    raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
            if flag.kind is list:
                opts[flag.name].append(value)
            else:
                opts[flag.name] = value
        i += 1
    return opts, positionals
