/*
 * mamori rules: PHP webshells and backdoors.
 *
 * Every rule carries meta:
 *   kind     = malware.webshell | malware.skimmer | malware.obfuscated (the finding kind)
 *   tier     = confirmed (high/critical: safe to page someone) | heuristic (low/medium)
 *   severity = the finding's severity (clamped to the tier's range by mamori)
 * The file is plain YARA: it compiles with yara-x (mamori) and with libyara 4.2
 * (`yara -r rules/php_webshell.yar DIR`).
 */

rule mamori_php_exec_request_direct
{
    meta:
        description = "PHP code or command execution fed directly from request data (eval/assert/system/... on $_GET/$_POST/$_COOKIE/HTTP headers)"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $exec = /[^\w$>:](eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec|create_function)\s*\(\s*@?\s*((base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|urldecode|rawurldecode|hex2bin|stripslashes|trim)\s*\(\s*)*\$_(GET|POST|REQUEST|COOKIE|FILES|SERVER\s*\[\s*['"]HTTP_)/
        // callback as the first argument / as the second
        $cuf = /[^\w$>:](call_user_func(_array)?|array_map|register_shutdown_function|register_tick_function|forward_static_call(_array)?)\s*\(\s*@?\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)/
        $cuf2 = /[^\w$>:](array_filter|array_walk|array_walk_recursive|array_reduce|usort|uasort|uksort|iterator_apply)\s*\([^,;]{1,100},\s*@?\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)/
        $create = /[^\w$>:]create_function\s*\([^;]{0,120}\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)/
    condition:
        any of them
}

rule mamori_php_exec_request_variable
{
    meta:
        description = "request data put in a variable and, a few lines later, executed as PHP code or a shell command"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $flow = /\$\w{1,20}\s*=\s*@?\s*\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)[^;]{0,80};.{0,300}[^\w$>:](eval|assert|system|passthru|shell_exec|popen|proc_open|pcntl_exec)\s*\(\s*@?\s*((base64_decode|gzinflate|gzuncompress|str_rot13|strrev|urldecode|rawurldecode|hex2bin)\s*\(\s*)*\$\w{1,20}\s*[),]/s
    condition:
        $flow
}

rule mamori_php_callback_string_concat
{
    meta:
        description = "a callback (array_map, call_user_func, ...) whose function name is glued together from string pieces, e.g. 'ass'.'ert'"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $cb = /[^\w$>:](call_user_func(_array)?|array_map|register_shutdown_function|register_tick_function|forward_static_call(_array)?)\s*\(\s*['"][a-z_]{1,12}['"]\s*\.\s*['"][a-z_0-9]{1,12}['"]/ nocase
        $cb2 = /[^\w$>:](array_filter|array_walk|array_walk_recursive|array_reduce|usort|uasort|uksort|iterator_apply)\s*\([^,;]{1,100},\s*['"][a-z_]{1,12}['"]\s*\.\s*['"][a-z_0-9]{1,12}['"]/ nocase
    condition:
        any of them
}

rule mamori_php_dynamic_function_request
{
    meta:
        description = "a function name built at run time (chr() chain, pack('H*'), base64 or hex escapes) called with request data"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $chr = /\$\w{1,20}\s*=\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(/ nocase
        $pack = /\$\w{1,20}\s*=\s*pack\s*\(\s*['"]H\*['"]\s*,\s*['"][0-9a-fA-F]{6,}['"]/
        $b64 = /\$\w{1,20}\s*=\s*base64_decode\s*\(\s*['"][A-Za-z0-9+\/]{4,24}={0,2}['"]\s*\)/
        $hex = /\$\w{1,20}\s*=\s*"(\\x[0-9a-fA-F]{2}){4,}/
        $rev = /\$\w{1,20}\s*=\s*(strrev|str_rot13)\s*\(\s*['"][a-z_0-9]{4,20}['"]\s*\)/ nocase
        $call = /[^\w$>:]\$\w{1,20}\s*\(\s*@?\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)/
    condition:
        $call and any of ($chr, $pack, $b64, $hex, $rev)
}

rule mamori_php_variable_function_request_heuristic
{
    meta:
        description = "a small PHP file that takes a function name or argument from the request and calls a variable function"
        kind = "malware.webshell"
        tier = "heuristic"
        severity = "medium"
        author = "mamori"
    strings:
        $php = "<?php" nocase
        $flow = /\$\w{1,20}\s*=\s*@?\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\]\s*(\?\?\s*['"][a-z_0-9]{0,20}['"]\s*)?;.{0,400}[^\w$>:]\$\w{1,20}\s*\(\s*\$\w{1,20}\s*\)/s
        $call_req = /[^\w$>:]\$\w{1,20}\s*\(\s*@?\$_(GET|POST|REQUEST|COOKIE)/
    condition:
        filesize < 8KB and $php and ($flow or $call_req)
}

rule mamori_php_preg_replace_eval
{
    meta:
        description = "preg_replace with the /e modifier (evaluates the replacement as PHP) on request data"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $e = /preg_replace\s*\(\s*['"](\/[^\/'"]{0,80}\/|#[^#'"]{0,80}#|~[^~'"]{0,80}~|\|[^|'"]{0,80}\||@[^@'"]{0,80}@|![^!'"]{0,80}!)[imsxuADSUXJ]{0,6}e[imsxuADSUXJ]{0,6}['"]/
        $req = /\$_(GET|POST|REQUEST|COOKIE|SERVER\s*\[\s*['"]HTTP_)/
    condition:
        $e and $req
}

rule mamori_php_preg_replace_eval_heuristic
{
    meta:
        description = "preg_replace with the /e modifier (removed in PHP 7; in new code a backdoor sign)"
        kind = "malware.webshell"
        tier = "heuristic"
        severity = "low"
        author = "mamori"
    strings:
        $e = /preg_replace\s*\(\s*['"](\/[^\/'"]{0,80}\/|#[^#'"]{0,80}#|~[^~'"]{0,80}~|\|[^|'"]{0,80}\||@[^@'"]{0,80}@|![^!'"]{0,80}!)[imsxuADSUXJ]{0,6}e[imsxuADSUXJ]{0,6}['"]/
    condition:
        $e
}

rule mamori_php_uploader
{
    meta:
        description = "a self-contained upload form that stores the file under the name the client chose (a webshell dropper)"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $move = /move_uploaded_file\s*\(\s*\$_FILES\s*\[[^\]]{1,30}\]\s*\[\s*['"]tmp_name['"]\s*\]\s*,[^;]{0,160}\$_FILES\s*\[[^\]]{1,30}\]\s*\[\s*['"]name['"]\s*\]/
        $form = /enctype\s*=\s*['"]multipart\/form-data['"]/ nocase
        $file = /type\s*=\s*['"]?file/ nocase
    condition:
        filesize < 64KB and $move and $form and $file
}

rule mamori_php_uploader_heuristic
{
    meta:
        description = "an upload stored under the client's own file name (no extension check, may allow .php uploads)"
        kind = "malware.webshell"
        tier = "heuristic"
        severity = "medium"
        author = "mamori"
    strings:
        $move = /move_uploaded_file\s*\(\s*\$_FILES\s*\[[^\]]{1,30}\]\s*\[\s*['"]tmp_name['"]\s*\]\s*,[^;]{0,160}\$_FILES\s*\[[^\]]{1,30}\]\s*\[\s*['"]name['"]\s*\]/
    condition:
        $move
}

rule mamori_php_in_image
{
    meta:
        description = "PHP code inside a file that starts like an image (GIF, JPEG, PNG, ICO, BMP): an image that executes"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $php = /<\?php[\s\/]/ nocase
        $short = /<\?=?\s*(@?\$_|@?eval|@?assert|@?system|if\s*\()/
    condition:
        (uint32be(0) == 0x47494638 or uint16be(0) == 0xFFD8 or uint32be(0) == 0x89504E47 or uint32be(0) == 0x00000100 or uint16be(0) == 0x424D)
        and ($php or $short)
}
