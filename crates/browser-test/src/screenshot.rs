//! Screenshot comparison against committed reference PNGs: per-pixel differences above a small
//! channel threshold, a tolerated share of differing pixels, `UPDATE_SCREENSHOTS=1` to write
//! references, and the actual and difference images of a failure written outside the clone.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A pixel differs when one of its channels (0–255) differs by more than this.
pub const CHANNEL_THRESHOLD: u8 = 8;

/// The outcome of a comparison that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The share of pixels that differ, from 0 to 1 (0 when the reference was written).
    pub differing_share: f64,
    /// Whether the reference was written (`UPDATE_SCREENSHOTS=1`) instead of compared.
    pub written: bool,
}

/// Compares a PNG with a committed reference.
///
/// With `UPDATE_SCREENSHOTS=1` it writes `png` as the reference (creating its directory) and
/// returns `written: true`. Otherwise both images must have the same dimensions; a pixel
/// differs when one channel differs by more than [`CHANNEL_THRESHOLD`]; the comparison passes
/// when the share of differing pixels is at most `tolerance` (0 to 1).
///
/// On a failure it writes `<name>.actual.png` and, when the sizes match, `<name>.diff.png` (the
/// reference faded to grey, differing pixels in red) into [`failure_dir`], and the error names
/// both files. A missing reference is an error that says how to create it.
pub fn compare_screenshot(png: &[u8], reference: &Path, tolerance: f64) -> Result<Comparison> {
    let actual = decode(png, "screenshot")?;
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        if let Some(dir) = reference.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                action: "writing",
                path: dir.to_owned(),
                source,
            })?;
        }
        write(reference, png)?;
        return Ok(Comparison {
            differing_share: 0.0,
            written: true,
        });
    }
    let reference_png = match std::fs::read(reference) {
        Ok(bytes) => bytes,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            let actual_path = failure_path(reference, "actual")?;
            write(&actual_path, png)?;
            return Err(Error::MissingReference {
                reference: reference.to_owned(),
                actual: actual_path,
            });
        }
        Err(source) => {
            return Err(Error::Io {
                action: "reading",
                path: reference.to_owned(),
                source,
            });
        }
    };
    let expected = decode(&reference_png, &reference.display().to_string())?;
    if (expected.width, expected.height) != (actual.width, actual.height) {
        let actual_path = failure_path(reference, "actual")?;
        write(&actual_path, png)?;
        return Err(Error::SizeDiffers {
            reference: reference.to_owned(),
            reference_size: (expected.width, expected.height),
            actual_size: (actual.width, actual.height),
            actual: actual_path,
        });
    }
    let differing: Vec<bool> = expected
        .rgba
        .as_chunks::<4>()
        .0
        .iter()
        .zip(actual.rgba.as_chunks::<4>().0)
        .map(|(left, right)| {
            left.iter()
                .zip(right)
                .any(|(a, b)| a.abs_diff(*b) > CHANNEL_THRESHOLD)
        })
        .collect();
    let n_differing = differing.iter().filter(|&&differs| differs).count();
    let n_pixels = differing.len().max(1);
    #[allow(
        clippy::cast_precision_loss,
        reason = "a share of pixels needs no exactness"
    )]
    let differing_share = n_differing as f64 / n_pixels as f64;
    if differing_share <= tolerance {
        return Ok(Comparison {
            differing_share,
            written: false,
        });
    }
    let actual_path = failure_path(reference, "actual")?;
    write(&actual_path, png)?;
    let diff_path = failure_path(reference, "diff")?;
    let diff = diff_image(&expected, &differing);
    write(&diff_path, &encode(&diff, &diff_path)?)?;
    Err(Error::ScreenshotDiffers {
        reference: reference.to_owned(),
        differing_share,
        tolerance,
        actual: actual_path,
        diff: diff_path,
    })
}

/// Where a failed comparison writes its images: `$CARGO_TARGET_DIR/screenshot-failures` when
/// Cargo's target directory is set (as `scripts/test` does), else `screenshot-failures` in the
/// system's temporary directory. Never next to the committed references.
pub fn failure_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("osiris"))
        .join("screenshot-failures")
}

/// A PNG's width and height, read from its header.
pub fn png_dimensions(png: &[u8]) -> Result<(u32, u32)> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().map_err(|err| Error::Png {
        what: "screenshot".to_owned(),
        message: err.to_string(),
    })?;
    let info = reader.info();
    Ok((info.width, info.height))
}

/// An image as 8-bit RGBA.
struct Image {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

fn decode(png: &[u8], what: &str) -> Result<Image> {
    let png_error = |err: png::DecodingError| Error::Png {
        what: what.to_owned(),
        message: err.to_string(),
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let size = reader.output_buffer_size().ok_or_else(|| Error::Png {
        what: what.to_owned(),
        message: "image too large".to_owned(),
    })?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(png_error)?;
    buffer.truncate(frame.buffer_size());
    let rgba = match frame.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .as_chunks::<3>()
            .0
            .iter()
            .flat_map(|&[r, g, b]| [r, g, b, 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buffer
            .as_chunks::<2>()
            .0
            .iter()
            .flat_map(|&[grey, alpha]| [grey, grey, grey, alpha])
            .collect(),
        png::ColorType::Grayscale => buffer.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => {
            return Err(Error::Png {
                what: what.to_owned(),
                message: "palette image was not expanded".to_owned(),
            });
        }
    };
    Ok(Image {
        width: frame.width,
        height: frame.height,
        rgba,
    })
}

fn encode(image: &Image, path: &Path) -> Result<Vec<u8>> {
    let png_error = |err: png::EncodingError| Error::Png {
        what: path.display().to_string(),
        message: err.to_string(),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&image.rgba).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// The reference faded towards white in grey, with every differing pixel pure red.
fn diff_image(reference: &Image, differing: &[bool]) -> Image {
    let rgba = reference
        .rgba
        .as_chunks::<4>()
        .0
        .iter()
        .zip(differing)
        .flat_map(|(&[r, g, b, _], &differs)| {
            if differs {
                [255, 0, 0, 255]
            } else {
                let grey = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
                // A quarter of the grey over white: context without competing with the red.
                let faded = u8::try_from(192 + grey / 4).unwrap_or(u8::MAX);
                [faded, faded, faded, 255]
            }
        })
        .collect();
    Image {
        width: reference.width,
        height: reference.height,
        rgba,
    }
}

/// `<failure_dir>/<reference's file stem>.<kind>.png`, with the directory created.
fn failure_path(reference: &Path, kind: &str) -> Result<PathBuf> {
    let dir = failure_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        action: "writing",
        path: dir.clone(),
        source,
    })?;
    let stem = reference
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "screenshot".to_owned());
    Ok(dir.join(format!("{stem}.{kind}.png")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        action: "writing",
        path: path.to_owned(),
        source,
    })
}
