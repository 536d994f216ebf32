# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_twofold_global_optspecs
    string join \n bus= json h/help V/version
end

function __fish_twofold_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_twofold_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_twofold_using_subcommand
    set -l cmd (__fish_twofold_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c twofold -n "__fish_twofold_needs_command" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_needs_command" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_needs_command" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "enroll" -d 'Set up two-factor authentication with an authenticator app'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "status" -d 'Show whether two-factor authentication is on, backup codes left, last use and lockout'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "devices" -d 'List, add or remove your devices (authenticator apps); a code of any of them works'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "backup-codes" -d 'Count or renew your single-use backup codes'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "disable" -d 'Turn two-factor authentication off (needs your password and a code)'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "doctor" -d 'Check the set-up: daemon, server clock, PAM and sshd, your phone\'s clock'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "sessions" -d 'See your login sessions (where from, since when) and end them'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "admin" -d 'Administer users: list, reset, unlock, import them; hardware tokens; the audit trail'
complete -c twofold -n "__fish_twofold_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l issuer -d 'Name shown in the authenticator app (default: this host\'s name)' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l proof -d 'Re-enrolling (new phone) or adding a device: `-` reads a current code of a device you have, or a backup code, from standard input (without it, it is asked for)' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l qr-png -d 'Also write the QR code as a PNG image to FILE (it holds the secret: delete it after)' -r -F
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l qr-svg -d 'Also write the QR code as an SVG image to FILE (it holds the secret: delete it after)' -r -F
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l algorithm -d 'HMAC of the codes: SHA1 (what every app does, the default), SHA256 or SHA512; some apps ignore it and then show wrong codes' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l digits -d 'Digits per code: 6 (the default) or 8; some apps ignore it' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l period -d 'Seconds per code: 30 (the default) or 60; some apps ignore it' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l confirm -d 'Finish an enrollment started with --begin: `-` reads the current code from the app from standard input' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l begin -d 'Only start: print the secret and URI, then exit (finish with --confirm -)'
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand enroll" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand status" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand status" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand status" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand status" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -l user -d 'Act on USER\'s devices (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -f -a "list" -d 'List the devices (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -f -a "add" -d 'Add a device: its QR code, then its first code (needs a code of a device you have)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -f -a "remove" -d 'Remove a device (needs a code of another device, or a backup code)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and not __fish_seen_subcommand_from list add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from list" -l user -d 'Act on USER\'s devices (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from list" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l issuer -d 'Name shown in the authenticator app (default: this host\'s name)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l proof -d 'Re-enrolling (new phone) or adding a device: `-` reads a current code of a device you have, or a backup code, from standard input (without it, it is asked for)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l qr-png -d 'Also write the QR code as a PNG image to FILE (it holds the secret: delete it after)' -r -F
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l qr-svg -d 'Also write the QR code as an SVG image to FILE (it holds the secret: delete it after)' -r -F
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l algorithm -d 'HMAC of the codes: SHA1 (what every app does, the default), SHA256 or SHA512; some apps ignore it and then show wrong codes' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l digits -d 'Digits per code: 6 (the default) or 8; some apps ignore it' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l period -d 'Seconds per code: 30 (the default) or 60; some apps ignore it' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l confirm -d 'Finish an enrollment started with --begin: `-` reads the current code from the app from standard input' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l user -d 'Act on USER\'s devices (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l begin -d 'Only start: print the secret and URI, then exit (finish with --confirm -)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -l code -d '`-` reads a current code of another device, or a backup code, from standard input (without it, it is asked for when needed)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -l user -d 'Act on USER\'s devices (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the devices (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a device: its QR code, then its first code (needs a code of a device you have)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a device (needs a code of another device, or a backup code)'
complete -c twofold -n "__fish_twofold_using_subcommand devices; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -f -a "count" -d 'Show how many backup codes are left (warns when 3 or fewer)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -f -a "regenerate" -d 'Replace all backup codes with a new set of 10 (the old ones stop working at once)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and not __fish_seen_subcommand_from count regenerate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from count" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from count" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from count" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from count" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from count" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -l code -d '`-` reads a current code from the app, or a backup code, from standard input (without it, it is asked for when needed)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from regenerate" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from help" -f -a "count" -d 'Show how many backup codes are left (warns when 3 or fewer)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from help" -f -a "regenerate" -d 'Replace all backup codes with a new set of 10 (the old ones stop working at once)'
complete -c twofold -n "__fish_twofold_using_subcommand backup-codes; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand disable" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand disable" -l code -d '`-` reads a current code from the app, or a backup code, from standard input (after the password with --password-stdin; without it, it is asked for when needed)' -r
complete -c twofold -n "__fish_twofold_using_subcommand disable" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand disable" -s y -l yes -d 'Do not ask for the typed confirmation'
complete -c twofold -n "__fish_twofold_using_subcommand disable" -l password-stdin -d 'Read the account password from the first line of standard input'
complete -c twofold -n "__fish_twofold_using_subcommand disable" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand disable" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand doctor" -l user -d 'Act on USER instead of yourself (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand doctor" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand doctor" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -l user -d 'Act on USER\'s sessions (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -l all -d 'Also list sessions that ended in the last 7 days, with why'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -f -a "list" -d 'List the sessions (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -f -a "revoke" -d 'End a session, or all but the current one with --others'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -f -a "timeout" -d 'End sessions older than DURATION (30m, 8h, 1d, 1h30m), or `off`'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -f -a "forget" -d 'Forget the remembered logins (the grace window starts afresh)'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and not __fish_seen_subcommand_from list revoke timeout forget help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'Act on USER\'s sessions (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -l all -d 'Also list sessions that ended in the last 7 days, with why'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l user -d 'Act on USER\'s sessions (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l others -d 'End every session but the one you are in'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from timeout" -l user -d 'Act on USER\'s sessions (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from timeout" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from timeout" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from timeout" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from timeout" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from forget" -l user -d 'Act on USER\'s sessions (needs root or the administer permission)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from forget" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from forget" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from forget" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from forget" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the sessions (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'End a session, or all but the current one with --others'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "timeout" -d 'End sessions older than DURATION (30m, 8h, 1d, 1h30m), or `off`'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "forget" -d 'Forget the remembered logins (the grace window starts afresh)'
complete -c twofold -n "__fish_twofold_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "users" -d 'List users: enrolled, required (and by when), last use, backup codes, lockout, sessions'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "reset" -d 'Remove a user\'s two-factor authentication so they enroll again (lost phone and codes)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "unlock" -d 'Release a user\'s lockout after too many wrong codes (from every source)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "import" -d 'Enroll users with the secrets they already use with another PAM module'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "log" -d 'Read the audit trail, newest first: who did what, to whom, from where, when'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "tokens" -d 'Hardware OATH tokens: import a vendor\'s PSKC file, list, assign, unassign, resync'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and not __fish_seen_subcommand_from users reset unlock import log tokens help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from users" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from users" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from users" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from users" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -l reason -d 'Why, and who checked the user\'s identity (kept in the audit trail)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -l bypass-code -d 'Also print a one-time code that lets USER log in once within HOURS (1 to 720)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from unlock" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from unlock" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from unlock" -s h -l help -d 'Print help'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from unlock" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -f -a "google-authenticator" -d 'Import google-authenticator-libpam\'s ~/.google_authenticator files'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -f -a "oath" -d 'Import pam_oath\'s usersfile (/etc/users.oath)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from import" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -l user -d 'Only entries about USER' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -l since -d 'Only entries since T: a date (2026-11-27), a date and time (2026-11-27T14:00; UTC unless it ends in Z or an offset like +01:00) or a time ago (30m, 2h, 3d, 1w)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -l limit -d 'At most N entries, the newest (default 100)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from log" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -l bus -d 'D-Bus address of the bus where twofoldd runs (default: the system bus)' -r
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -l json -d 'Print machine-readable JSON on standard output'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -s V -l version -d 'Print version'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "list" -d 'List the imported tokens (the same as no subcommand)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "import" -d 'Import the tokens of a vendor\'s PSKC file (RFC 6030), unassigned'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "assign" -d 'Make a token a device of USER (enrolling USER if needed)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "unassign" -d 'Take a token back: its device goes, its counter stays with the token'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "resync" -d 'Find an HOTP token\'s counter again from two consecutive codes'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from tokens" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "users" -d 'List users: enrolled, required (and by when), last use, backup codes, lockout, sessions'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Remove a user\'s two-factor authentication so they enroll again (lost phone and codes)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "unlock" -d 'Release a user\'s lockout after too many wrong codes (from every source)'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "import" -d 'Enroll users with the secrets they already use with another PAM module'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "log" -d 'Read the audit trail, newest first: who did what, to whom, from where, when'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "tokens" -d 'Hardware OATH tokens: import a vendor\'s PSKC file, list, assign, unassign, resync'
complete -c twofold -n "__fish_twofold_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "enroll" -d 'Set up two-factor authentication with an authenticator app'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "status" -d 'Show whether two-factor authentication is on, backup codes left, last use and lockout'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "devices" -d 'List, add or remove your devices (authenticator apps); a code of any of them works'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "backup-codes" -d 'Count or renew your single-use backup codes'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "disable" -d 'Turn two-factor authentication off (needs your password and a code)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "doctor" -d 'Check the set-up: daemon, server clock, PAM and sshd, your phone\'s clock'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "sessions" -d 'See your login sessions (where from, since when) and end them'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "admin" -d 'Administer users: list, reset, unlock, import them; hardware tokens; the audit trail'
complete -c twofold -n "__fish_twofold_using_subcommand help; and not __fish_seen_subcommand_from enroll status devices backup-codes disable doctor sessions admin help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from devices" -f -a "list" -d 'List the devices (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from devices" -f -a "add" -d 'Add a device: its QR code, then its first code (needs a code of a device you have)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from devices" -f -a "remove" -d 'Remove a device (needs a code of another device, or a backup code)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from backup-codes" -f -a "count" -d 'Show how many backup codes are left (warns when 3 or fewer)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from backup-codes" -f -a "regenerate" -d 'Replace all backup codes with a new set of 10 (the old ones stop working at once)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List the sessions (the default)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "revoke" -d 'End a session, or all but the current one with --others'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "timeout" -d 'End sessions older than DURATION (30m, 8h, 1d, 1h30m), or `off`'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "forget" -d 'Forget the remembered logins (the grace window starts afresh)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "users" -d 'List users: enrolled, required (and by when), last use, backup codes, lockout, sessions'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "reset" -d 'Remove a user\'s two-factor authentication so they enroll again (lost phone and codes)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "unlock" -d 'Release a user\'s lockout after too many wrong codes (from every source)'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "import" -d 'Enroll users with the secrets they already use with another PAM module'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "log" -d 'Read the audit trail, newest first: who did what, to whom, from where, when'
complete -c twofold -n "__fish_twofold_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "tokens" -d 'Hardware OATH tokens: import a vendor\'s PSKC file, list, assign, unassign, resync'
