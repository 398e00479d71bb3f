# bash completion for bulkmap: commands, each command's options (read from the tool's own
# `COMMAND --help`, so they never fall behind it), option values, files for scan and load,
# and dataset names for cat, stat and rm (from `bulkmap ls --json`, else /dev/shm).
# Installed as share/bash-completion/completions/bulkmap; by hand: source this file.

_bulkmap_commands() {
  "$1" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z]\{1,\}\) .*/\1/p'
}

_bulkmap_options() {
  "$1" "$2" --help 2>/dev/null | grep -o -- '^  --[a-z-]*' | sed 's/^  //'
  echo --help
}

_bulkmap_datasets() {
  local names
  names=$("$1" ls --json 2>/dev/null | grep -o '"name":"[^"]*"' | sed 's/^"name":"//; s/"$//')
  if [ -z "$names" ] && [ -d /dev/shm ]; then
    names=$(cd /dev/shm 2>/dev/null && ls -1 2>/dev/null)
  fi
  printf '%s\n' "$names"
}

_bulkmap() {
  local cur prev words cword bm cmd i
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n = || return
  else
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  bm=${words[0]}
  # The tool being completed, as typed (./build/default/tools/bulkmap too).
  case "$bm" in
    */*) [ -x "$bm" ] || bm=bulkmap ;;
    *) command -v "$bm" >/dev/null 2>&1 || bm=bulkmap ;;
  esac
  cmd=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      -*) ;;
      *) cmd=${words[i]}; break ;;
    esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$(_bulkmap_commands "$bm") help --help --version" -- "$cur"))
    return
  fi
  case "$prev" in
    --large-pages) COMPREPLY=($(compgen -W "auto on off" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "auto raw npy safetensors" -- "$cur")); return ;;
    --pages) COMPREPLY=($(compgen -W "4k thp large 4k,thp,large 4k,large" -- "$cur")); return ;;
    --file | --csv) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    --group | -g) COMPREPLY=($(compgen -g -- "$cur")); return ;;
    --name | -n | --count | -c | --offset | -o | --length | --window | -w | --threads | -t | \
      --size | -s | --runs | --mode | -m | --wait) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_bulkmap_options "$bm" "$cmd")" -- "$cur"))
    return
  fi
  case "$cmd" in
    help) COMPREPLY=($(compgen -W "$(_bulkmap_commands "$bm")" -- "$cur")) ;;
    cat | stat | rm) COMPREPLY=($(compgen -W "$(_bulkmap_datasets "$bm")" -- "$cur")) ;;
    scan | load) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
  esac
}
complete -F _bulkmap bulkmap
