# bash completion for nvemu-rpc: method names (the CLI's table, plus what a
# running nvemud lists in rpc_get_methods) and each method's --parameters.
_nvemu_rpc()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} i method="" sock=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-s) sock=${COMP_WORDS[i+1]}; ((i++)) ;;
		-t|-j) ((i++)) ;;
		-*) ;;
		*) method=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	-s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-t|-j) return ;;
	esac
	if [ -z "$method" ]; then
		local names
		names=$(nvemu-rpc --complete-methods 2>/dev/null)
		names+=" "$(nvemu-rpc ${sock:+-s "$sock"} -t 1 rpc_get_methods 2>/dev/null |
			sed -n 's/^ *"\([a-z_0-9]*\)",\{0,1\}$/\1/p')
		names=$(printf '%s\n' $names | sort -u)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-s -t -v -j -h --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$names" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(nvemu-rpc --complete-params "$method" 2>/dev/null) --help -j" -- "$cur"))
	fi
}
complete -F _nvemu_rpc nvemu-rpc
