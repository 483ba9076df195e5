/*
 * json.c -- the little JSON the tool needs: writing byte strings, and a
 * strict reader for `produce --json` (RFC 8259 syntax, no extensions).
 *
 * Records hold bytes, JSON holds Unicode text. The bridge: valid UTF-8 is
 * written as it is; any other byte as \u00XX, and the reader takes
 * \u0000-\u00ff as that one byte. So `consume --json | produce --json`
 * copies binary keys and values exactly; a character in U+0080..U+00FF is
 * written in UTF-8 (as itself), never escaped.
 */
#include "cli.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void json_write_string(FILE *f, const void *data, size_t n)
{
    const unsigned char *p = data;
    putc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        i++;
        switch (c) {
        case '"':  fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c >= 0x7f)      /* controls, DEL, stray bytes */
                fprintf(f, "\\u%04x", c);
            else
                putc((int)c, f);
        }
    }
    putc('"', f);
}

/* ---------------------------------------------------------------- reader */

static bool fail(json_reader *j, const char *what)
{
    if (!j->err[0])
        snprintf(j->err, sizeof j->err, "%s", what);
    return false;
}

void json_init(json_reader *j, const void *p, size_t n)
{
    j->p = p;
    j->end = j->p + n;
    j->err[0] = '\0';
}

char json_peek(json_reader *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
    return j->p < j->end ? *j->p : 0;
}

bool json_expect(json_reader *j, char c)
{
    if (json_peek(j) != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return fail(j, msg);
    }
    j->p++;
    return true;
}

bool json_null(json_reader *j)
{
    if (json_peek(j) == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return true;
    }
    return false;
}

bool json_end(json_reader *j)
{
    return json_peek(j) == 0 || fail(j, "unexpected text after the object");
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static void put_utf8(cli_buf *out, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6); b[1] = (unsigned char)(0x80 | (cp & 0x3f)); n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12); b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f)); n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18); b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)); b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    cli_buf_add(out, b, n);
}

bool json_string(json_reader *j, cli_buf *out)
{
    if (json_peek(j) != '"')
        return fail(j, "expected a string");
    j->p++;
    while (j->p < j->end) {
        const unsigned char *p = (const unsigned char *)j->p;
        if (*p == '"') {
            j->p++;
            return true;
        }
        if (*p < 0x20)
            return fail(j, "control character in a string");
        if (*p != '\\') {
            size_t len = utf8_len(p, (size_t)(j->end - j->p));
            if (!len)
                return fail(j, "invalid UTF-8 in a string");
            cli_buf_add(out, p, len);
            j->p += len;
            continue;
        }
        if (j->end - j->p < 2)
            break;
        char e = j->p[1];
        j->p += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            cli_buf_add(out, &to[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        if (e != 'u' || j->end - j->p < 4 || hex4(j->p) < 0)
            return fail(j, "bad escape in a string");
        unsigned cp = (unsigned)hex4(j->p);
        j->p += 4;
        if (cp <= 0xff) {                       /* one byte: see the top */
            unsigned char b = (unsigned char)cp;
            cli_buf_add(out, &b, 1);
            continue;
        }
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail(j, "lone low surrogate in a string");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' ? hex4(j->p + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail(j, "lone high surrogate in a string");
            cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
            j->p += 6;
        }
        put_utf8(out, cp);
    }
    return fail(j, "unterminated string");
}

bool json_int(json_reader *j, int64_t *out)
{
    json_peek(j);
    const char *s = j->p;
    bool neg = s < j->end && *s == '-';
    if (neg)
        s++;
    if (s == j->end || *s < '0' || *s > '9')
        return fail(j, "expected an integer");
    if (*s == '0' && s + 1 < j->end && s[1] >= '0' && s[1] <= '9')
        return fail(j, "leading zero in a number");
    uint64_t v = 0;
    for (; s < j->end && *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_C(1) << 63) / 10)
            return fail(j, "integer out of range");
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (s < j->end && (*s == '.' || *s == 'e' || *s == 'E'))
        return fail(j, "expected an integer, not a fraction");
    if (v > (uint64_t)INT64_MAX + neg)
        return fail(j, "integer out of range");
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    j->p = s;
    return true;
}
