/*
 * mamori rules: obfuscated PHP and JavaScript (code hidden behind decoders). Meta as in
 * php_webshell.yar. Legitimate encoders (ionCube, SourceGuardian, minifiers) are not
 * matched: they do not feed a decoder straight into eval.
 */

rule mamori_php_eval_decoder
{
    meta:
        description = "PHP eval() of decoded data: eval(base64_decode(...)), eval(gzinflate(...)), eval(str_rot13(...)), eval(strrev(...))"
        kind = "malware.obfuscated"
        tier = "confirmed"
        severity = "high"
        author = "mamori"
    strings:
        $e = /[^\w$>:](eval|assert)\s*\(\s*@?\s*(gzinflate|gzuncompress|gzdecode|str_rot13|strrev|base64_decode|hex2bin|convert_uudecode|urldecode|rawurldecode|pack|strtr)\s*\(/ nocase
    condition:
        $e
}

rule mamori_php_eval_dynamic
{
    meta:
        description = "PHP eval() of what a dynamically named function returns ($GLOBALS arrays, variable functions)"
        kind = "malware.obfuscated"
        tier = "confirmed"
        severity = "high"
        author = "mamori"
    strings:
        $g = /[^\w$>:]eval\s*\(\s*@?\s*\$GLOBALS\s*\[/
        $v = /[^\w$>:]eval\s*\(\s*@?\s*\$\w{1,20}(\s*\[[^\]]{1,20}\]){0,3}\s*\(/
    condition:
        any of them
}

rule mamori_php_xor_eval
{
    meta:
        description = "PHP that XOR-decodes a blob in a loop and evals the result"
        kind = "malware.obfuscated"
        tier = "confirmed"
        severity = "high"
        author = "mamori"
    strings:
        $xor = /\^\s*\$\w{1,20}\s*\[\s*\$\w{1,20}\s*%\s*strlen\s*\(/
        $eval = /[^\w$>:]eval\s*\(\s*@?\s*\$\w{1,20}\s*\)/
        $blob = /base64_decode\s*\(\s*['"][A-Za-z0-9+\/]{64,}/
    condition:
        $xor and $eval and $blob
}

rule mamori_php_hidden_function_names
{
    meta:
        description = "names of dangerous PHP functions spelled with hex escapes, pack('H*') or base64 (no honest code hides them)"
        kind = "malware.obfuscated"
        tier = "confirmed"
        severity = "high"
        author = "mamori"
    strings:
        // "\x62\x61\x73\x65\x36\x34" base64_, "\x65\x76\x61\x6c" eval, "\x61\x73\x73\x65\x72\x74" assert,
        // "\x73\x79\x73\x74\x65\x6d" system, "\x67\x7a\x69\x6e" gzin(flate), "\x73\x74\x72\x5f\x72\x6f\x74" str_rot,
        // "\x63\x72\x65\x61\x74\x65\x5f" create_, "\x73\x68\x65\x6c\x6c\x5f" shell_, "\x70\x61\x73\x73\x74\x68" passth
        $hex = /\\x62\\x61\\x73\\x65\\x36\\x34|\\x65\\x76\\x61\\x6c|\\x61\\x73\\x73\\x65\\x72\\x74|\\x73\\x79\\x73\\x74\\x65\\x6d|\\x67\\x7a\\x69\\x6e|\\x73\\x74\\x72\\x5f\\x72\\x6f\\x74|\\x63\\x72\\x65\\x61\\x74\\x65\\x5f|\\x73\\x68\\x65\\x6c\\x6c\\x5f|\\x70\\x61\\x73\\x73\\x74\\x68/ nocase
        // pack('H*', ...) of shell_exec, system, assert, passthru, base64_decode, eval
        $pack = /pack\s*\(\s*['"]H\*['"]\s*,\s*['"](7368656c6c5f65786563|73797374656d|617373657274|7061737374687275|6261736536345f6465636f6465|6576616c)/ nocase
        // base64_decode('c3lzdGVt') = system, assert, eval, passthru, shell_exec, exec, popen, proc_open,
        // create_function, base64_decode, gzinflate, str_rot13
        $b64 = /base64_decode\s*\(\s*['"](c3lzdGVt|YXNzZXJ0|ZXZhbA|cGFzc3RocnU|c2hlbGxfZXhlYw|ZXhlYw|cG9wZW4|cHJvY19vcGVu|Y3JlYXRlX2Z1bmN0aW9u|YmFzZTY0X2RlY29kZQ|Z3ppbmZsYXRl|c3RyX3JvdDEz)={0,2}['"]/
    condition:
        any of them
}

rule mamori_php_chr_chain_heuristic
{
    meta:
        description = "a string built from a long chain of chr() calls (hides a function name or URL)"
        kind = "malware.obfuscated"
        tier = "heuristic"
        severity = "low"
        author = "mamori"
    strings:
        $chr = /chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(/ nocase
    condition:
        $chr
}

rule mamori_js_eval_decoder
{
    meta:
        description = "JavaScript that evaluates decoded text: eval(atob(..)), new Function(atob(..)), eval(String.fromCharCode(..)), eval(unescape(..))"
        kind = "malware.obfuscated"
        tier = "confirmed"
        severity = "high"
        author = "mamori"
    strings:
        $e1 = /(eval|new\s+Function|setTimeout|setInterval)\s*\(\s*(window\.)?(atob|unescape|decodeURIComponent|String\.fromCharCode)\s*\(/
        $e2 = /(eval|new\s+Function)\s*\(\s*["'](\\x[0-9a-fA-F]{2}|\\u00[0-9a-fA-F]{2}){8,}/
    condition:
        any of them
}

rule mamori_js_charcode_url
{
    meta:
        description = "a URL hidden as character codes (String.fromCharCode(104,116,116,112,...) = \"http\")"
        kind = "malware.obfuscated"
        tier = "heuristic"
        severity = "medium"
        author = "mamori"
    strings:
        $u = /fromCharCode\s*\(\s*104\s*,\s*116\s*,\s*116\s*,\s*112\s*,/
        $h = /["'](\\x68\\x74\\x74\\x70|\\u0068\\u0074\\u0074\\u0070)/ nocase
    condition:
        any of them
}

rule mamori_js_string_array_heuristic
{
    meta:
        description = "javascript-obfuscator style code: an _0x string array of hex-escaped strings rotated and looked up by index"
        kind = "malware.obfuscated"
        tier = "heuristic"
        severity = "low"
        author = "mamori"
    strings:
        $arr = /var\s+_0x[0-9a-f]{3,6}\s*=\s*\[\s*['"](\\x[0-9a-fA-F]{2}){3,}/
        $push = /\[['"]push['"]\]\s*\(\s*_0x[0-9a-f]{1,6}\s*\[['"]shift['"]\]\s*\(\s*\)\s*\)/
    condition:
        $arr or $push
}
