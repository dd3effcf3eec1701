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
        let (chunk, more) = if rest > u128::from(u64::MAX) {
            ((rest % CHUNK) as u64, rest / CHUNK)
        } else {
            (rest as u64, 0)
        };
        // A chunk below others has all its 19 digits, leading zeros included.
        let len = if more == 0 { digit_count(chunk) } else { 19 };
        at -= len;
        write_digits(chunk, &mut buf[at..at + len]);
        if more == 0 {
            break;
        }
        rest = more;
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// How many decimal digits `n` has.
pub(crate) fn digit_count(n: u64) -> usize {
    let (mut digits, mut above) = (1, n / 10);
    while above > 0 {
        digits += 1;
        above /= 10;
    }
    digits
}

/// The last `out.len()` decimal digits of `n` into `out` (all of them, when it is
/// [`digit_count`] bytes long; leading zeros when longer).
pub(crate) fn write_digits(mut n: u64, out: &mut [u8]) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
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
        for n in [u128::MAX, u128::from(u64::MAX), u128::from(u64::MAX) + 1] {
            let mut buf = [0u8; 40];
            assert_eq!(super::decimal(n, false, &mut buf), n.to_string());
        }
        for n in [0, 9, 10, 99, 100, 12345, u64::MAX / 10, u64::MAX] {
            let mut out = vec![0; super::digit_count(n)];
            super::write_digits(n, &mut out);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
