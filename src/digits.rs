//! Decimal digits of an integer written into a buffer, without the formatting machinery
//! (the YAML writer writes every number of a plan, the assembler names every bus it adds).

/// The decimal digits of `n` (after a `-` when `negative`), written into the end of `buf`.
pub(crate) fn decimal(mut n: u128, negative: bool, buf: &mut [u8; 40]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
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
