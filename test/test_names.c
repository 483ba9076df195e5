/* test_names.c -- topic and group names: the whitelist that guards paths. */
#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"

Test(names, valid)
{
    static const char *ok[] = {
        "a", "Z", "0", "_", "-", "...", ".a", "a.", "..a", "a..", "-rf",
        "orders", "orders.v2", "my_topic-1", "A.B_C-D.0.9", "__consumer_offsets",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_expect(ulog__name_valid(ok[i]), "\"%s\" should be valid", ok[i]);
}

Test(names, length_limit)
{
    char name[251];

    memset(name, 'x', 249);
    name[249] = '\0';
    cr_expect(ulog__name_valid(name), "249 bytes is the maximum");
    memset(name, 'x', 250);
    name[250] = '\0';
    cr_expect_not(ulog__name_valid(name), "250 bytes is too long");
    memset(name, '.', 249);
    name[249] = '\0';
    cr_expect(ulog__name_valid(name), "249 dots is a name, not a path step");
}

Test(names, hostile)
{
    static const char *bad[] = {
        "", ".", "..", "/", "a/b", "../x", "./x", "x/..", "/etc/passwd",
        "a\\b", "a\n", "\n", "a\r", "a\t", "\x01", "a\x7f", "\x1b[31m",
        " a", "a ", "a b", "\xc3\xa9", "caf\xc3\xa9", "\xff", "\x80",
        "a:b", "C:", "a*", "a?", "a\"", "a'", "a|b", "a;b", "a$b", "~",
        "a%2fb", "a@b", "a+b", "a,b", "a=b", "(a)", "[a]", "{a}", "<a>",
        "a#b", "a!b", "a&b", "a`b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(ulog__name_valid(bad[i]), "name #%zu should be rejected", i);
}

Test(names, embedded_nul_ends_the_name)
{
    /* A C string stops at NUL: "a\0/../x" is the valid name "a", and no
     * byte after the NUL can reach a path. */
    cr_expect(ulog__name_valid("a\0/../x"));
    cr_expect_not(ulog__name_valid("\0a"));
}

Test(names, null)
{
    cr_expect_not(ulog__name_valid(NULL));
}
