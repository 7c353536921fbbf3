/*
 * mamori rules: web server and PHP configuration tricks (.htaccess, .user.ini) that make
 * images run as PHP or prepend attacker code to every request. Meta as in php_webshell.yar.
 */

rule mamori_htaccess_image_as_php
{
    meta:
        description = ".htaccess makes image or text files run as PHP (AddType/AddHandler/SetHandler application/x-httpd-php)"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $addtype = /(AddType|AddHandler)\s+application\/x-httpd-php[a-z0-9-]*[^\n]{0,100}\.(jpe?g|png|gif|ico|bmp|webp|txt|css|log)\b/ nocase
        $sethandler = /<Files(Match)?\s[^>]{0,100}(jpe?g|png|gif|ico|bmp|webp|txt|css|log)[^>]{0,60}>\s*(SetHandler|ForceType)\s+application\/x-httpd-php/ nocase
    condition:
        any of them
}

rule mamori_php_prepend_non_php
{
    meta:
        description = "auto_prepend_file/auto_append_file (.htaccess php_value or .user.ini) pointing at an image, text or hidden file: that file runs before every PHP page"
        kind = "malware.webshell"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $ext = /auto_(prepend|append)_file\s*=?\s*['"]?[^'"\n]{0,200}\.(ico|jpe?g|png|gif|bmp|webp|txt|css|log|dat|tmp|js)['"]?\s*$/ nocase
        $hidden = /auto_(prepend|append)_file\s*=?\s*['"]?([^'"\n]{0,200}\/)?\.[a-z0-9_-]{1,40}\.[a-z]{2,4}['"]?\s*$/ nocase
    condition:
        any of them
}
