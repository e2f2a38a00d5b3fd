//! Four-letter words: admin commands sent as the first 4 bytes of a
//! connection instead of a frame (protocol section 14).

use crate::int_enum::int_enum;

int_enum! {
    /// A known command; the value is its 4 ASCII bytes read as a big-endian
    /// int, as the Java server compares them.
    pub enum FourLetterWord {
        #[default]
        Ruok = i32::from_be_bytes(*b"ruok"),
        Srvr = i32::from_be_bytes(*b"srvr"),
        Stat = i32::from_be_bytes(*b"stat"),
        Mntr = i32::from_be_bytes(*b"mntr"),
        Conf = i32::from_be_bytes(*b"conf"),
        Cons = i32::from_be_bytes(*b"cons"),
        Envi = i32::from_be_bytes(*b"envi"),
        Wchs = i32::from_be_bytes(*b"wchs"),
        Wchc = i32::from_be_bytes(*b"wchc"),
        Wchp = i32::from_be_bytes(*b"wchp"),
        Dump = i32::from_be_bytes(*b"dump"),
        Isro = i32::from_be_bytes(*b"isro"),
        Crst = i32::from_be_bytes(*b"crst"),
        Srst = i32::from_be_bytes(*b"srst"),
        Dirs = i32::from_be_bytes(*b"dirs"),
        Gtmk = i32::from_be_bytes(*b"gtmk"),
        Stmk = i32::from_be_bytes(*b"stmk"),
        Hash = i32::from_be_bytes(*b"hash"),
    }
}

impl FourLetterWord {
    /// The command as text (`ruok`).
    pub fn name(self) -> &'static str {
        match self {
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Hash => "hash",
        }
    }

    /// The command named by `name`, if any.
    pub fn from_name(name: &str) -> Option<FourLetterWord> {
        let bytes: [u8; 4] = name.as_bytes().try_into().ok()?;
        FourLetterWord::from_i32(i32::from_be_bytes(bytes))
    }

    /// Bytes that follow the command: `stmk` carries an 8-byte trace mask.
    pub fn argument_len(self) -> usize {
        if self == FourLetterWord::Stmk {
            8
        } else {
            0
        }
    }
}
