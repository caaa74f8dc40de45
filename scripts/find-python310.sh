#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (Rasa 3.6 needs 3.8-3.10; python-telegram-bot 22
# needs >= 3.10), or explain how to get one and exit 1.
set -u
is310() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
for c in "${PYTHON310:-}" python3.10 python3 python; do
  [ -n "$c" ] || continue
  p=$(command -v "$c" 2>/dev/null) || continue
  if is310 "$p"; then echo "$p"; exit 0; fi
done
roots="${PYENV_ROOT:-} ${HOME:-/root}/.pyenv"
command -v pyenv >/dev/null 2>&1 && roots="$(pyenv root) $roots"
for root in $roots; do
  for d in "$root"/versions/3.10*; do
    [ -x "$d/bin/python3.10" ] && is310 "$d/bin/python3.10" && { echo "$d/bin/python3.10"; exit 0; }
  done
done
for p in /usr/bin/python3.10 /usr/local/bin/python3.10 /opt/python3.10/bin/python3.10; do
  [ -x "$p" ] && is310 "$p" && { echo "$p"; exit 0; }
done
{
  echo "Python 3.10 was not found. Rasa 3.6 (the last open-source Rasa) runs on Python 3.8-3.10 and"
  echo "python-telegram-bot 22 needs 3.10, so this project needs exactly Python 3.10. Install it with one of:"
  echo "  pyenv install 3.10.13                 (then run make again; pyenv is found automatically)"
  echo "  sudo apt-get install python3.10 python3.10-venv      (Debian/Ubuntu where packaged)"
  echo "  or set PYTHON310=/path/to/python3.10"
} >&2
exit 1
