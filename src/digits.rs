//! Decimal digits of an integer written into a buffer, without the formatting machinery
//! (the YAML writer writes every number of a plan, the assembler names every bus it adds).

/// The decimal digits of `n` (after a `-` when `negative`), written into the end of `buf`.
pub(crate) fn decimal(n: u128, negative: bool, buf: &mut [u8; 40]) -> &str {
    // 128-bit division is a library call: the number is cut into chunks of 19 digits
    // (one chunk for every number below 2^64, as a plan's are), each written with 64-bit
    // arithmetic.
    const CHUNK: u128 = 10_u128.pow(19);
    let mut at = buf.len();
    let mut rest = n;
    loop {
        let (mut chunk, more) = if rest > u128::from(u64::MAX) {
            ((rest % CHUNK) as u64, rest / CHUNK)
        } else {
            (rest as u64, 0)
        };
        let start = at;
        loop {
            at -= 1;
            buf[at] = b'0' + (chunk % 10) as u8;
            chunk /= 10;
            if chunk == 0 {
                break;
            }
        }
        if more == 0 {
            break;
        }
        // A chunk below others has all its 19 digits, leading zeros included.
        while at > start - 19 {
            at -= 1;
            buf[at] = b'0';
        }
        rest = more;
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_what_display_writes() {
        for n in [
            0i128,
            1,
            -1,
            9,
            10,
            -10,
            255,
            4096,
            i64::MAX.into(),
            i64::MIN.into(),
            u64::MAX.into(),
            i128::from(u64::MAX) + 1,
            10_i128.pow(19),
            10_i128.pow(19) - 1,
            10_i128.pow(20) + 7,
            10_i128.pow(38) + 1,
            i128::MAX,
            i128::MIN + 1,
        ] {
            let mut buf = [0u8; 40];
            assert_eq!(
                super::decimal(n.unsigned_abs(), n < 0, &mut buf),
                n.to_string()
            );
        }
        let mut buf = [0u8; 40];
        assert_eq!(
            super::decimal(u128::MAX, false, &mut buf),
            u128::MAX.to_string()
        );
    }
}
