_twofold() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="twofold"
                ;;
            twofold,admin)
                cmd="twofold__subcmd__admin"
                ;;
            twofold,backup-codes)
                cmd="twofold__subcmd__backup__subcmd__codes"
                ;;
            twofold,devices)
                cmd="twofold__subcmd__devices"
                ;;
            twofold,disable)
                cmd="twofold__subcmd__disable"
                ;;
            twofold,doctor)
                cmd="twofold__subcmd__doctor"
                ;;
            twofold,enroll)
                cmd="twofold__subcmd__enroll"
                ;;
            twofold,help)
                cmd="twofold__subcmd__help"
                ;;
            twofold,sessions)
                cmd="twofold__subcmd__sessions"
                ;;
            twofold,status)
                cmd="twofold__subcmd__status"
                ;;
            twofold__subcmd__admin,help)
                cmd="twofold__subcmd__admin__subcmd__help"
                ;;
            twofold__subcmd__admin,import)
                cmd="twofold__subcmd__admin__subcmd__import"
                ;;
            twofold__subcmd__admin,log)
                cmd="twofold__subcmd__admin__subcmd__log"
                ;;
            twofold__subcmd__admin,reset)
                cmd="twofold__subcmd__admin__subcmd__reset"
                ;;
            twofold__subcmd__admin,tokens)
                cmd="twofold__subcmd__admin__subcmd__tokens"
                ;;
            twofold__subcmd__admin,unlock)
                cmd="twofold__subcmd__admin__subcmd__unlock"
                ;;
            twofold__subcmd__admin,users)
                cmd="twofold__subcmd__admin__subcmd__users"
                ;;
            twofold__subcmd__admin__subcmd__help,help)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__admin__subcmd__help,import)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__import"
                ;;
            twofold__subcmd__admin__subcmd__help,log)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__log"
                ;;
            twofold__subcmd__admin__subcmd__help,reset)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__reset"
                ;;
            twofold__subcmd__admin__subcmd__help,tokens)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens"
                ;;
            twofold__subcmd__admin__subcmd__help,unlock)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__unlock"
                ;;
            twofold__subcmd__admin__subcmd__help,users)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__users"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__import,google-authenticator)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__import__subcmd__google__subcmd__authenticator"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__import,oath)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__import__subcmd__oath"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__tokens,assign)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__assign"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__tokens,import)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__import"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__tokens,list)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__list"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__tokens,resync)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__resync"
                ;;
            twofold__subcmd__admin__subcmd__help__subcmd__tokens,unassign)
                cmd="twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__unassign"
                ;;
            twofold__subcmd__admin__subcmd__import,google-authenticator)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__google__subcmd__authenticator"
                ;;
            twofold__subcmd__admin__subcmd__import,help)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__help"
                ;;
            twofold__subcmd__admin__subcmd__import,oath)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__oath"
                ;;
            twofold__subcmd__admin__subcmd__import__subcmd__help,google-authenticator)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__google__subcmd__authenticator"
                ;;
            twofold__subcmd__admin__subcmd__import__subcmd__help,help)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__admin__subcmd__import__subcmd__help,oath)
                cmd="twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__oath"
                ;;
            twofold__subcmd__admin__subcmd__tokens,assign)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__assign"
                ;;
            twofold__subcmd__admin__subcmd__tokens,help)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help"
                ;;
            twofold__subcmd__admin__subcmd__tokens,import)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__import"
                ;;
            twofold__subcmd__admin__subcmd__tokens,list)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__list"
                ;;
            twofold__subcmd__admin__subcmd__tokens,resync)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__resync"
                ;;
            twofold__subcmd__admin__subcmd__tokens,unassign)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__unassign"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,assign)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__assign"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,help)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,import)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__import"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,list)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__list"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,resync)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__resync"
                ;;
            twofold__subcmd__admin__subcmd__tokens__subcmd__help,unassign)
                cmd="twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__unassign"
                ;;
            twofold__subcmd__backup__subcmd__codes,count)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__count"
                ;;
            twofold__subcmd__backup__subcmd__codes,help)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__help"
                ;;
            twofold__subcmd__backup__subcmd__codes,regenerate)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__regenerate"
                ;;
            twofold__subcmd__backup__subcmd__codes__subcmd__help,count)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__count"
                ;;
            twofold__subcmd__backup__subcmd__codes__subcmd__help,help)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__backup__subcmd__codes__subcmd__help,regenerate)
                cmd="twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__regenerate"
                ;;
            twofold__subcmd__devices,add)
                cmd="twofold__subcmd__devices__subcmd__add"
                ;;
            twofold__subcmd__devices,help)
                cmd="twofold__subcmd__devices__subcmd__help"
                ;;
            twofold__subcmd__devices,list)
                cmd="twofold__subcmd__devices__subcmd__list"
                ;;
            twofold__subcmd__devices,remove)
                cmd="twofold__subcmd__devices__subcmd__remove"
                ;;
            twofold__subcmd__devices__subcmd__help,add)
                cmd="twofold__subcmd__devices__subcmd__help__subcmd__add"
                ;;
            twofold__subcmd__devices__subcmd__help,help)
                cmd="twofold__subcmd__devices__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__devices__subcmd__help,list)
                cmd="twofold__subcmd__devices__subcmd__help__subcmd__list"
                ;;
            twofold__subcmd__devices__subcmd__help,remove)
                cmd="twofold__subcmd__devices__subcmd__help__subcmd__remove"
                ;;
            twofold__subcmd__help,admin)
                cmd="twofold__subcmd__help__subcmd__admin"
                ;;
            twofold__subcmd__help,backup-codes)
                cmd="twofold__subcmd__help__subcmd__backup__subcmd__codes"
                ;;
            twofold__subcmd__help,devices)
                cmd="twofold__subcmd__help__subcmd__devices"
                ;;
            twofold__subcmd__help,disable)
                cmd="twofold__subcmd__help__subcmd__disable"
                ;;
            twofold__subcmd__help,doctor)
                cmd="twofold__subcmd__help__subcmd__doctor"
                ;;
            twofold__subcmd__help,enroll)
                cmd="twofold__subcmd__help__subcmd__enroll"
                ;;
            twofold__subcmd__help,help)
                cmd="twofold__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__help,sessions)
                cmd="twofold__subcmd__help__subcmd__sessions"
                ;;
            twofold__subcmd__help,status)
                cmd="twofold__subcmd__help__subcmd__status"
                ;;
            twofold__subcmd__help__subcmd__admin,import)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__import"
                ;;
            twofold__subcmd__help__subcmd__admin,log)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__log"
                ;;
            twofold__subcmd__help__subcmd__admin,reset)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__reset"
                ;;
            twofold__subcmd__help__subcmd__admin,tokens)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens"
                ;;
            twofold__subcmd__help__subcmd__admin,unlock)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__unlock"
                ;;
            twofold__subcmd__help__subcmd__admin,users)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__users"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__import,google-authenticator)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__import__subcmd__google__subcmd__authenticator"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__import,oath)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__import__subcmd__oath"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__tokens,assign)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__assign"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__tokens,import)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__import"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__tokens,list)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__list"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__tokens,resync)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__resync"
                ;;
            twofold__subcmd__help__subcmd__admin__subcmd__tokens,unassign)
                cmd="twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__unassign"
                ;;
            twofold__subcmd__help__subcmd__backup__subcmd__codes,count)
                cmd="twofold__subcmd__help__subcmd__backup__subcmd__codes__subcmd__count"
                ;;
            twofold__subcmd__help__subcmd__backup__subcmd__codes,regenerate)
                cmd="twofold__subcmd__help__subcmd__backup__subcmd__codes__subcmd__regenerate"
                ;;
            twofold__subcmd__help__subcmd__devices,add)
                cmd="twofold__subcmd__help__subcmd__devices__subcmd__add"
                ;;
            twofold__subcmd__help__subcmd__devices,list)
                cmd="twofold__subcmd__help__subcmd__devices__subcmd__list"
                ;;
            twofold__subcmd__help__subcmd__devices,remove)
                cmd="twofold__subcmd__help__subcmd__devices__subcmd__remove"
                ;;
            twofold__subcmd__help__subcmd__sessions,forget)
                cmd="twofold__subcmd__help__subcmd__sessions__subcmd__forget"
                ;;
            twofold__subcmd__help__subcmd__sessions,list)
                cmd="twofold__subcmd__help__subcmd__sessions__subcmd__list"
                ;;
            twofold__subcmd__help__subcmd__sessions,revoke)
                cmd="twofold__subcmd__help__subcmd__sessions__subcmd__revoke"
                ;;
            twofold__subcmd__help__subcmd__sessions,timeout)
                cmd="twofold__subcmd__help__subcmd__sessions__subcmd__timeout"
                ;;
            twofold__subcmd__sessions,forget)
                cmd="twofold__subcmd__sessions__subcmd__forget"
                ;;
            twofold__subcmd__sessions,help)
                cmd="twofold__subcmd__sessions__subcmd__help"
                ;;
            twofold__subcmd__sessions,list)
                cmd="twofold__subcmd__sessions__subcmd__list"
                ;;
            twofold__subcmd__sessions,revoke)
                cmd="twofold__subcmd__sessions__subcmd__revoke"
                ;;
            twofold__subcmd__sessions,timeout)
                cmd="twofold__subcmd__sessions__subcmd__timeout"
                ;;
            twofold__subcmd__sessions__subcmd__help,forget)
                cmd="twofold__subcmd__sessions__subcmd__help__subcmd__forget"
                ;;
            twofold__subcmd__sessions__subcmd__help,help)
                cmd="twofold__subcmd__sessions__subcmd__help__subcmd__help"
                ;;
            twofold__subcmd__sessions__subcmd__help,list)
                cmd="twofold__subcmd__sessions__subcmd__help__subcmd__list"
                ;;
            twofold__subcmd__sessions__subcmd__help,revoke)
                cmd="twofold__subcmd__sessions__subcmd__help__subcmd__revoke"
                ;;
            twofold__subcmd__sessions__subcmd__help,timeout)
                cmd="twofold__subcmd__sessions__subcmd__help__subcmd__timeout"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        twofold)
            opts="-h -V --bus --json --help --version enroll status devices backup-codes disable doctor sessions admin help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin)
            opts="-h -V --bus --json --help --version users reset unlock import log tokens help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help)
            opts="users reset unlock import log tokens help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__import)
            opts="google-authenticator oath"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__import__subcmd__google__subcmd__authenticator)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__import__subcmd__oath)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__log)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__reset)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens)
            opts="list import assign unassign resync"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__assign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__import)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__resync)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__tokens__subcmd__unassign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__unlock)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__help__subcmd__users)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import)
            opts="-h -V --bus --json --help --version google-authenticator oath help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__google__subcmd__authenticator)
            opts="-h -V --all --file --remove-files --dry-run --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__help)
            opts="google-authenticator oath help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__google__subcmd__authenticator)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__help__subcmd__oath)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__import__subcmd__oath)
            opts="-h -V --dry-run --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__log)
            opts="-h -V --user --since --limit --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --since)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__reset)
            opts="-h -V --reason --bypass-code --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --reason)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bypass-code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens)
            opts="-h -V --bus --json --help --version list import assign unassign resync help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__assign)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help)
            opts="list import assign unassign resync help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__assign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__import)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__resync)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__help__subcmd__unassign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__import)
            opts="-h -V --key-file --password-file --dry-run --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --key-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --password-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__list)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__resync)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__tokens__subcmd__unassign)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__unlock)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__admin__subcmd__users)
            opts="-h -V --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes)
            opts="-h -V --user --bus --json --help --version count regenerate help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__count)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__help)
            opts="count regenerate help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__count)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__help__subcmd__regenerate)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__backup__subcmd__codes__subcmd__regenerate)
            opts="-h -V --user --code --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices)
            opts="-h -V --user --bus --json --help --version list add remove help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__add)
            opts="-h -V --issuer --proof --qr-png --qr-svg --algorithm --digits --period --begin --confirm --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --issuer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proof)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --qr-png)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --qr-svg)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --algorithm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --digits)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --period)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --confirm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__help)
            opts="list add remove help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__help__subcmd__add)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__help__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__list)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__devices__subcmd__remove)
            opts="-h -V --code --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__disable)
            opts="-y -h -V --user --yes --password-stdin --code --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__doctor)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__enroll)
            opts="-h -V --user --issuer --proof --qr-png --qr-svg --algorithm --digits --period --begin --confirm --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --issuer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proof)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --qr-png)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --qr-svg)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --algorithm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --digits)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --period)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --confirm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help)
            opts="enroll status devices backup-codes disable doctor sessions admin help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin)
            opts="users reset unlock import log tokens"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__import)
            opts="google-authenticator oath"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__import__subcmd__google__subcmd__authenticator)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__import__subcmd__oath)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__log)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__reset)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens)
            opts="list import assign unassign resync"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__assign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__import)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__resync)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__tokens__subcmd__unassign)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__unlock)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__admin__subcmd__users)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__backup__subcmd__codes)
            opts="count regenerate"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__backup__subcmd__codes__subcmd__count)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__backup__subcmd__codes__subcmd__regenerate)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__devices)
            opts="list add remove"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__devices__subcmd__add)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__devices__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__devices__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__disable)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__doctor)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__enroll)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__sessions)
            opts="list revoke timeout forget"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__sessions__subcmd__forget)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__sessions__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__sessions__subcmd__revoke)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__sessions__subcmd__timeout)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__help__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions)
            opts="-h -V --user --all --bus --json --help --version list revoke timeout forget help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__forget)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help)
            opts="list revoke timeout forget help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help__subcmd__forget)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help__subcmd__revoke)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__help__subcmd__timeout)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__list)
            opts="-h -V --all --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__revoke)
            opts="-h -V --others --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__sessions__subcmd__timeout)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        twofold__subcmd__status)
            opts="-h -V --user --bus --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _twofold -o nosort -o bashdefault -o default twofold
else
    complete -F _twofold -o bashdefault -o default twofold
fi
