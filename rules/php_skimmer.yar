/*
 * mamori rules: PHP card skimmers (card fields read from the request and written to a
 * file, mailed, or sent out). Meta as in php_webshell.yar.
 */

rule mamori_php_skimmer_card_to_file
{
    meta:
        description = "card fields from the request written to a file (a stash, often disguised as an image or stylesheet)"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        // a card field read from the request, then within a few lines a file write
        $flow = /\$_(POST|REQUEST|GET)\s*\[\s*['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc|cvv2|exp[a-z_]{0,10}|code)|cc[_-]?(number|num|cid|cvv|cvc|exp[a-z_]{0,10})|ccnum|cvv2?|cvc2?|security[_-]?code)['"]\s*\].{0,400}(file_put_contents|fwrite|fputs|error_log)\s*\(/is
        $flow_rev = /(file_put_contents|fwrite|fputs|error_log)\s*\([^;]{0,300}\$_(POST|REQUEST|GET)\s*\[\s*['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc|exp[a-z_]{0,10})|cc[_-]?(number|num|cid|cvv|exp[a-z_]{0,10})|ccnum|cvv2?|cvc2?)['"]/is
        // the whole request serialised into a file in a file that deals with card fields
        $dump = /(file_put_contents|fwrite|fputs)\s*\([^;]{0,300}(serialize|json_encode|http_build_query|print_r|var_export|implode)\s*\(\s*\$_(POST|REQUEST)\s*[,)]/is
        $dump2 = /\$\w{1,20}\s*=\s*(serialize|json_encode|http_build_query|print_r|var_export)\s*\(\s*\$_(POST|REQUEST)\s*[,)].{0,400}(file_put_contents|fwrite|fputs)\s*\(/is
        // a payment[] array read from the request (Magento) and its cc_ keys written out
        $arr = /\$\w{1,20}\s*=\s*\$_(POST|REQUEST)\s*\[\s*['"]payment['"]\s*\].{0,400}(file_put_contents|fwrite|fputs)\s*\([^;]{0,300}\[\s*['"]cc_(number|cid|owner)['"]\s*\]/is
        $card = /['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc)|cc[_-]?(number|num|cid|cvv)|ccnum|cvv2?|security[_-]?code)['"]/ nocase
        $append = /FILE_APPEND|fopen\s*\([^;]{1,300},\s*['"]a\+?b?['"]\s*\)/
    condition:
        $flow or $flow_rev or $arr or (($dump or $dump2) and $card and $append)
}

rule mamori_php_skimmer_card_mail
{
    meta:
        description = "card fields or the whole checkout request sent by mail()"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $mail_fields = /[^\w$>:]mail\s*\([^;]{0,300}\$_(POST|REQUEST)\s*\[\s*['"](card|cc_|ccnum|cvv|cvc)/is
        $mail_dump = /[^\w$>:]mail\s*\([^;]{0,300}(serialize|json_encode|http_build_query|print_r|var_export|implode)\s*\(\s*\$_(POST|REQUEST)\s*[,)]/is
        $card = /['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc)|cc[_-]?(number|num|cid|cvv)|ccnum|cvv2?|security[_-]?code)['"]/ nocase
    condition:
        $mail_fields or ($mail_dump and $card)
}

rule mamori_php_skimmer_card_encoded
{
    meta:
        description = "card fields from the request encoded (base64, XOR, serialize) before leaving: only a skimmer hides a card number it just received"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $b64_fields = /(base64_encode|str_rot13|strrev|bin2hex|gzdeflate|gzcompress)\s*\([^;]{0,200}\$_(POST|REQUEST|GET)\s*\[\s*['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc|exp)|cc[_-]?(number|num|cid|cvv|exp)|ccnum|cvv2?|cvc2?)['"]/is
        $xor = /\$\w{1,20}\s*=\s*(json_encode|serialize|http_build_query|implode)\s*\(\s*\$_(POST|REQUEST)\s*[,)].{0,400}chr\s*\(\s*ord\s*\([^)]{1,40}\)\s*\^/is
    condition:
        any of them
}

rule mamori_php_skimmer_card_network
{
    meta:
        description = "card fields from the request sent over the network (curl, file_get_contents of a URL, raw sockets); a direct-post payment module does this too, so this is a heuristic"
        kind = "malware.skimmer"
        tier = "heuristic"
        severity = "medium"
        author = "mamori"
    strings:
        $req = /\$_(POST|REQUEST)\s*\[\s*['"][a-z_-]{0,24}(card[_-]?(number|num|no|cvv|cvc)|cc[_-]?(number|num|cid|cvv)|ccnum|cvv2?|cvc2?)['"]/ nocase
        $curl = /CURLOPT_POSTFIELDS[^;]{0,300}\$_(POST|REQUEST)\s*\[\s*['"](card|cc_|ccnum|cvv|cvc)/is
        $fgc = /file_get_contents\s*\(\s*['"]https?:\/\/[^'"]{1,200}['"]\s*\.\s*(urlencode|rawurlencode|base64_encode)?\s*\(?\s*\$/
        $sock = /[^\w$>:](fsockopen|stream_socket_client|socket_connect|pfsockopen)\s*\(/
    condition:
        $curl or ($req and ($fgc or $sock))
}

rule mamori_php_skimmer_card_obfuscated_sink
{
    meta:
        description = "card fields from the request handed to a function whose name is hidden (hex escapes, chr() chain, base64)"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $hexname = /\$\w{1,20}\s*=\s*"(\\x[0-9a-fA-F]{2}){6,}"/
        $chrname = /\$\w{1,20}\s*=\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(\s*(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6])\s*\)\s*\.\s*chr\s*\(/ nocase
        $b64name = /\$\w{1,20}\s*=\s*base64_decode\s*\(\s*['"][A-Za-z0-9+\/]{4,32}={0,2}['"]\s*\)/
        $call = /[^\w$>:]\$\w{1,20}\s*\(.{0,400}\$_(POST|REQUEST)\s*\[\s*['"](card|cc_|ccnum|cvv|cvc)/is
    condition:
        $call and any of ($hexname, $chrname, $b64name)
}

rule mamori_php_skimmer_include_image
{
    meta:
        description = "PHP code that includes an image file: the image holds code (the skimmer loader seen in altered payment modules)"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $inc = /[^\w$>:](include|require)(_once)?[\s(]\s*\(?\s*[^;]{0,200}['"][^'"\n]{0,200}\.(png|jpe?g|gif|ico|bmp|webp)['"]\s*\)?\s*;/ nocase
    condition:
        $inc
}
